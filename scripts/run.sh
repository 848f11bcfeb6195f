#!/usr/bin/env bash
# `make run`: installs what is missing, starts redis, placement and scheduler, starts the app with
# its sidecar (`dapr run -f .`), loads the sample data, and stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_python.sh
bash scripts/ensure_redis.sh
bash scripts/install_dapr.sh
export PATH="$HOME/.dapr/bin:$PATH"
if [[ -f .env ]]; then set -a; . ./.env; set +a; fi
# A local run without tokens configured uses the development tokens of env.template.
[[ -z "${API_TOKENS:-}" ]] && export DEV_MODE="${DEV_MODE:-true}"
# Components read these through the env secret store; empty means "use the default".
export OPENAI_API_KEY="${OPENAI_API_KEY:-}" OPENAI_BASE_URL="${OPENAI_BASE_URL:-}" LLM_MODEL="${LLM_MODEL:-}"

stop_all() {
  trap - INT TERM EXIT
  # Output may go to a pipe that Ctrl-C already closed (make run | tee): a write must not end
  # the clean-up half way and leave daprd and the app running.
  trap '' PIPE
  echo "[run] stopping" >&2 || true
  if [[ -n "${DAPR_PID:-}" ]]; then
    # `dapr run -f` leads its own process group with daprd and the app in it; signal the group,
    # since the CLI itself may already be gone.
    kill -TERM -- "-$DAPR_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 -- "-$DAPR_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$DAPR_PID" 2>/dev/null || true
  fi
  .venv/bin/python scripts/devstack.py down >/dev/null
}
trap stop_all INT TERM EXIT

mkdir -p .data/state
.venv/bin/python scripts/devstack.py up
dapr run -f . &
DAPR_PID=$!
.venv/bin/python scripts/wait_http.py http://127.0.0.1:8000/health --timeout 180 --pid "$DAPR_PID" \
  || { echo "[run] the app did not start: see .dapr/logs/" >&2; exit 1; }
.venv/bin/python setup_sample_data.py
echo "[run] API on http://127.0.0.1:8000 (docs: /docs). Ctrl-C stops everything." >&2
wait "$DAPR_PID"
