#!/usr/bin/env bash
# Installs HAProxy from Debian packages when it is missing: the load balancer of the replicated
# profile (make run REPLICAS=3). The project starts its own haproxy with a generated config under
# the data directory (scripts/devstack.py); the package's service is not used.
set -euo pipefail
command -v haproxy >/dev/null && exit 0
PROGRESS_TAG=ensure-haproxy
. "$(dirname "$0")/progress.sh"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
log "installing haproxy from Debian packages"
with_progress "updating the package lists" $SUDO apt-get update -qq
# policy-rc.d 101: the package must not start (or enable) its own haproxy service.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
with_progress "installing haproxy" $SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null
command -v haproxy >/dev/null || { echo "[ensure-haproxy] ERROR: haproxy still missing" >&2; exit 1; }
log "$(haproxy -v | head -1)"
