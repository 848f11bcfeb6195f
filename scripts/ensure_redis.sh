#!/usr/bin/env bash
# Installs redis-server from Debian packages when it is missing. The project starts its own
# redis on loopback (scripts/devstack.py); the package's service is not used.
set -euo pipefail
if command -v redis-server >/dev/null; then exit 0; fi
PROGRESS_TAG=ensure-redis
. "$(dirname "$0")/progress.sh"
log "installing redis-server from Debian packages"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
with_progress "updating the package lists" $SUDO apt-get update -qq
with_progress "installing redis-server" $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
log "done"
command -v redis-server >/dev/null || { echo "[ensure-redis] ERROR: redis-server still missing" >&2; exit 1; }
