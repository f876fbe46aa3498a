#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (one per parser of untrusted bytes) for
# SECONDS each (default 60) on its seed corpus in fuzz/corpus/<target>/.
# Installs cargo-fuzz when it is missing. Works on stable Rust: the targets
# are built with `--sanitizer none` (libFuzzer's coverage guidance needs no
# nightly flag; AddressSanitizer would, and safe Rust has little use for it).
#
# New inputs the fuzzer finds go to a temporary directory, so the committed
# seed corpus only changes when someone copies an input into it. A crash
# stops the script with a non-zero exit; the input is in
# fuzz/artifacts/<target>/ and is replayed with
#   cd fuzz && cargo fuzz run --sanitizer none <target> artifacts/<target>/<file>
# Every crash found becomes a regression unit test next to the parser.
#
#   scripts/fuzz.sh              # 60 s per target, optimised build
#   scripts/fuzz.sh 600          # longer, e.g. before a release
#   scripts/fuzz.sh --quick      # CI: unoptimised build (builds faster), 3 s per target
#   FUZZ_TARGETS="path cookie" scripts/fuzz.sh 30
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
build=()
profile=release
if [ "${1:-}" = "--quick" ]; then
    build=(--dev)
    profile=debug
    shift
    seconds="${1:-3}"
else
    seconds="${1:-60}"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
echo "==> building fuzz targets (fuzz/target)"
cargo fuzz build "${build[@]}" --sanitizer none

# The binaries are run directly: `cargo fuzz run` would check the build
# again for every target, a few seconds each.
bin="target/$(rustc -vV | sed -n 's/^host: //p')/$profile"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# --quick (CI) fuzzes from a fixed seed, so a run explores the same inputs
# first every time and a red CI names a real find, not luck; longer runs
# take a fresh seed each time (FUZZ_SEED overrides both).
seed="${FUZZ_SEED:-}"
if [ -z "$seed" ] && [ ${#build[@]} -gt 0 ]; then
    seed=1
fi
seed_arg=()
[ -n "$seed" ] && seed_arg=(-seed="$seed")
for t in $targets; do
    echo "==> fuzzing $t for ${seconds}s${seed:+ (seed $seed)}"
    mkdir -p "$work/$t" "corpus/$t" "artifacts/$t"
    # The first directory receives new inputs; the seed corpus is read only.
    if ! "$bin/$t" "$work/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${seed_arg[@]}" >"$work/$t.log" 2>&1; then
        tail -n 40 "$work/$t.log" >&2
        echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/ (replay: cd fuzz && cargo fuzz run ${build[*]} --sanitizer none $t <file>)" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" || true
done
echo "==> fuzzing: no crash in $(echo $targets | wc -w) targets, ${seconds}s each"
