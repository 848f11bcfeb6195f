#!/usr/bin/env bash
# Creates .venv and installs requirements.txt into it; skipped when the requirements have not
# changed since the last install (a stamp holds their hash).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && "$(cat $stamp)" == "$want" ]]; then exit 0; fi
PROGRESS_TAG=ensure-python
. scripts/progress.sh
log "installing Python packages into .venv"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
with_progress "upgrading pip" .venv/bin/python -m pip install -q --upgrade pip >/dev/null
with_progress "installing requirements.txt" .venv/bin/python -m pip install -q -r requirements.txt
log "done"
echo "$want" > $stamp
