#!/usr/bin/env bash
# Installs redis-server from Debian packages when it is missing. The project starts its own
# redis on loopback (scripts/devstack.py); the package's service is not used.
set -euo pipefail
if command -v redis-server >/dev/null; then exit 0; fi
echo "[ensure-redis] installing redis-server from Debian packages" >&2
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null || { echo "[ensure-redis] ERROR: redis-server still missing" >&2; exit 1; }
