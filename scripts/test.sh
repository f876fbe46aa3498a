#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests
# (real proxy, real upstream, real TLS, real redis-server and headless
# Chromium on loopback), the benchmarks in their quick test mode, and the
# load harness's smoke run. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export CARGO_TERM_COLOR=never
# A CI run builds once: incremental caches would only take disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
echo "==> disk free for target/: $(df -h --output=avail . | tail -1 | tr -d ' ')"
echo "==> cargo fmt --check ($(date -u +%T))"
cargo fmt --all -- --check
echo "==> cargo clippy ($(date -u +%T))"
cargo clippy --all-targets --quiet -- -D warnings
echo "==> load harness smoke run (benches/harness/run.sh --quick; asserts no timing) ($(date -u +%T))"
bash benches/harness/run.sh --quick
echo "==> cargo test ($(date -u +%T), disk free: $(df -h --output=avail . | tail -1 | tr -d ' '))"
cargo test --all-targets
echo "==> fuzz targets, 3 s each on their seed corpus (scripts/fuzz.sh --quick) ($(date -u +%T))"
bash scripts/fuzz.sh --quick
