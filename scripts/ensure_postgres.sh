#!/usr/bin/env bash
# Installs PostgreSQL 15 from Debian packages when it is missing (the PostgreSQL profile). The
# project initialises and starts its own server on loopback with its data in the data directory
# (scripts/devstack.py --profile postgresql); the package's own cluster and service are not used,
# so none is created.
set -euo pipefail
PG_MAJOR=15
if [[ -x /usr/lib/postgresql/$PG_MAJOR/bin/postgres && -x /usr/lib/postgresql/$PG_MAJOR/bin/initdb ]] \
   && command -v setpriv >/dev/null; then
  exit 0
fi
PROGRESS_TAG=ensure-postgres
. "$(dirname "$0")/progress.sh"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

log "installing postgresql-$PG_MAJOR from Debian packages"
with_progress "updating the package lists" $SUDO apt-get update -qq
# postgresql-common first, told not to create (and start) a "main" cluster for the server.
with_progress "installing postgresql-common" $SUDO apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/support-no-main.conf >/dev/null
# util-linux's setpriv runs the server as the postgres user when the scripts run as root.
with_progress "installing postgresql-$PG_MAJOR" $SUDO apt-get install -y -qq --no-install-recommends \
  "postgresql-$PG_MAJOR" postgresql-client-$PG_MAJOR util-linux >/dev/null
[[ -x /usr/lib/postgresql/$PG_MAJOR/bin/postgres ]] || { echo "[ensure-postgres] ERROR: postgres still missing" >&2; exit 1; }
log "postgresql-$PG_MAJOR installed"
