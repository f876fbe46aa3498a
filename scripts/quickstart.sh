#!/usr/bin/env bash
# Quick start: installs what is missing, builds portcullis, makes development
# certificates, and runs portcullis (embedded store) in front of the demo app.
# Stop with Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
echo "==> building (release; the first build takes a few minutes)"
cargo build --release --bins
bin=target/release
if [ ! -f certs/server.crt ] || [ ! -f certs/server.key ]; then
  "$bin/portcullis" certs dev --dir certs
fi
"$bin/portcullis" check --config config/portcullis.toml
"$bin/portcullis-demo-upstream" 127.0.0.1:3000 &
demo=$!
trap 'kill $demo 2>/dev/null' EXIT
cat <<MSG

  portcullis is starting. Open:
    https://demo.localhost:8443/   forwarded (you are on an internal address); shows the headers the app receives
    https://wiki.localhost:8443/   needs a login: redirected to the portal
  The certificate is signed by the development CA in certs/dev-ca.crt (trust it, or accept the warning).
  Try:  curl --cacert certs/dev-ca.crt https://demo.localhost:8443/
  Admin: target/release/portcullis admin health

MSG
"$bin/portcullis" run --config config/portcullis.toml
