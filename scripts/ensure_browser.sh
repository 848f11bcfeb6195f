#!/usr/bin/env bash
# Installs Chromium from Debian packages when it is missing: the console's browser tests
# (tests/browser/) drive it with Playwright as /usr/bin/chromium, so Playwright never downloads
# a browser of its own.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
echo "[ensure-browser] installing chromium from Debian packages" >&2
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[[ -x /usr/bin/chromium ]] || { echo "[ensure-browser] ERROR: /usr/bin/chromium still missing" >&2; exit 1; }
