#!/usr/bin/env bash
# Installs the system packages portcullis needs to build and test, when missing.
# Usage: scripts/deps.sh [build|test]   (test also installs the test tools)
set -euo pipefail
want=(cmake pkg-config gcc curl)
if [ "${1:-build}" = test ]; then
  want+=(redis-server oathtool nghttp2-client python3)
  # tests/browser.rs: headless Chromium over WebDriver; a CJK font for the Japanese pages
  want+=(chromium chromium-driver fonts-noto-cjk)
  # tests/device_certs.rs: the real readers of PKCS#12 bundles (openssl pkcs12, NSS pk12util)
  want+=(openssl libnss3-tools)
  # tests/mail.rs: a real SMTP server (aiosmtpd, run with /usr/bin/python3)
  want+=(python3-aiosmtpd)
  # tests/identity_jwt.rs: an independent JWT verifier (PyJWT with cryptography for ES256)
  want+=(python3-jwt python3-cryptography)
  # tests/forward_auth.rs: forward-auth behind a real nginx (auth_request)
  want+=(nginx)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs), then run this again" >&2
  exit 2
fi
