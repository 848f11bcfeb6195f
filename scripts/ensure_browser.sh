#!/usr/bin/env bash
# Installs Chromium from Debian packages when it is missing: the console's browser tests
# (tests/browser/) drive it with Playwright as /usr/bin/chromium, so Playwright never downloads
# a browser of its own.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
PROGRESS_TAG=ensure-browser
. "$(dirname "$0")/progress.sh"
log "installing chromium from Debian packages"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
with_progress "updating the package lists" $SUDO apt-get update -qq
with_progress "installing chromium" $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
log "done"
[[ -x /usr/bin/chromium ]] || { echo "[ensure-browser] ERROR: /usr/bin/chromium still missing" >&2; exit 1; }
