#!/usr/bin/env bash
# Load harness of portcullis (issue #8): builds the release binaries, installs
# what is missing (nginx, HAProxy, h2load, openssl), then runs bench.py, which
# compares portcullis with nginx, HAProxy and a bare Pingora proxy on loopback
# and writes benches/results/latest.{md,svg} (quick mode: quick.{md,svg}).
#
#   benches/harness/run.sh            full run (about 11 minutes on 2 cores)
#   benches/harness/run.sh --quick    smoke check, about a minute after the build (CI)
#   benches/harness/run.sh --rounds 1 --tls-seconds 1    a reduced full run (options go to bench.py)
#
# Everything runs on 127.0.0.0/8 with its own configs on free ports; the system
# nginx/HAProxy services are never touched. Every process started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
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

# bench.py stops everything it started (its own trap); this one stops bench.py.
child=""
stop() { if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then kill -TERM "$child"; wait "$child" || true; fi; }
trap stop EXIT
trap 'stop; exit 130' INT TERM
python3 benches/harness/bench.py --command "benches/harness/run.sh${*:+ $*}" "$@" &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
