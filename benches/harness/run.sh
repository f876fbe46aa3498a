#!/usr/bin/env bash
# Benchmark harness of portcullis (issues #8, #25): builds the release binaries and
# bare Pingora (its own crate, benches/harness/bare-pingora), installs what is
# missing (nginx, HAProxy, h2load, openssl, valgrind), then runs
#
#   load mode (bench.py): portcullis against nginx, HAProxy and bare Pingora on
#   loopback, req/s, CPU per request, latency, TLS handshakes; writes
#   benches/results/latest.{md,svg} (quick mode: quick.{md,svg});
#
#   instruction mode (callgrind.py --suite): instructions per request under
#   callgrind for bare Pingora, portcullis bypass (10 and 100 000 CIDRs) and
#   session, nginx and HAProxy, plus idle memory; writes
#   benches/results/instructions.md and the marked sections of
#   benches/results/latest.md and the README's Performance section.
#
#   benches/harness/run.sh                  full load run (about 11 minutes on 2 cores)
#   benches/harness/run.sh --quick          smoke check of both modes, about 1.5 minutes after the build (CI)
#   benches/harness/run.sh --rounds 1 --tls-seconds 1    a reduced full run (options go to bench.py)
#   benches/harness/run.sh --instructions   instruction counts (N = 4000, R = 3; about 4 minutes after the builds)
#   benches/harness/run.sh --instructions --requests 2000 --repeat 2   a shorter one
#
# Everything runs on 127.0.0.0/8 with its own configs on free ports; the system
# nginx/HAProxy services are never touched. Every process started is stopped on exit.
# Binaries go to $CARGO_TARGET_DIR (default target/); bare Pingora to its bare-pingora/.
set -euo pipefail
cd "$(dirname "$0")/../.."

instructions=0 quick=0
args=()
for a in "$@"; do
  if [[ $a == --instructions ]]; then instructions=1; else args+=("$a"); fi
  if [[ $a == --quick ]]; then quick=1; fi
done

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if ((instructions || quick)); then command -v valgrind >/dev/null || need+=(valgrind); fi
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  sudo_=""; [[ $(id -u) == 0 ]] || sudo_=sudo
  $sudo_ apt-get update -qq
  # The packages' own services are not wanted: keep them from starting.
  printf '#!/bin/sh\nexit 101\n' | $sudo_ tee /usr/sbin/policy-rc.d >/dev/null
  $sudo_ chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  $sudo_ rm -f /usr/sbin/policy-rc.d
fi

echo "building release binaries (cargo build --release --bins)"
cargo build --release --bins
# Bare Pingora is a crate of its own: upstream Pingora (not our patched copy), fat
# LTO and one codegen unit whatever the main crate's profile, its own Cargo.lock.
bare_target="${CARGO_TARGET_DIR:-target}/bare-pingora"
echo "building bare Pingora (cargo build --release --locked --manifest-path benches/harness/bare-pingora/Cargo.toml --target-dir $bare_target)"
cargo build --release --locked --manifest-path benches/harness/bare-pingora/Cargo.toml --target-dir "$bare_target"

if ((instructions)); then
  script=(benches/harness/callgrind.py --suite --command "benches/harness/run.sh${*:+ $*}")
else
  script=(benches/harness/bench.py --command "benches/harness/run.sh${*:+ $*}")
fi

# The Python script stops everything it started (its own trap); this one stops the script.
child=""
stop() { if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then kill -TERM "$child"; wait "$child" || true; fi; }
trap stop EXIT
trap 'stop; exit 130' INT TERM
status=0
python3 "${script[@]}" ${args[@]+"${args[@]}"} &
child=$!
wait "$child" || status=$?
child=""
# The smoke run checks the instruction mode too (bare Pingora, portcullis bypass and
# session, N = 200, one repeat, no file written): about 30 seconds.
if ((quick && !instructions && status == 0)); then
  echo "instruction mode smoke check (callgrind.py --suite --quick)"
  python3 benches/harness/callgrind.py --suite --quick &
  child=$!
  wait "$child" || status=$?
  child=""
fi
exit "$status"
