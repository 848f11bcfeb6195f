#!/usr/bin/env bash
# `make run`: installs what is missing, then starts every process under supervisord
# (scripts/cluster.py), which restarts whichever crashes, loads the sample data, reports each
# restart as it happens, and stops everything on Ctrl-C.
#   make run                          one app + daprd, SQLite stores, API on :8000
#   make run PROFILE=postgresql       the same on PostgreSQL
#   make run REPLICAS=3               PostgreSQL, 3 apps + 3 daprd, 3 placement + 3 scheduler
#                                     nodes, HAProxy on :8000 (REPLICAS>1 implies PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_python.sh
bash scripts/ensure_redis.sh
bash scripts/install_dapr.sh
bash scripts/install_mailpit.sh
REPLICAS="${REPLICAS:-1}"
PROFILE="${PROFILE:-}"
[[ "$REPLICAS" =~ ^[1-9]$ ]] || { echo "[run] REPLICAS must be 1..9, not '$REPLICAS'" >&2; exit 2; }
if (( REPLICAS > 1 )); then
  [[ -z "$PROFILE" || "$PROFILE" == postgresql ]] || { echo "[run] REPLICAS>1 needs PROFILE=postgresql" >&2; exit 2; }
  PROFILE=postgresql
fi
PROFILE="${PROFILE:-sqlite}"
[[ "$PROFILE" == sqlite || "$PROFILE" == postgresql ]] || { echo "[run] PROFILE is sqlite or postgresql" >&2; exit 2; }
[[ "$PROFILE" == postgresql ]] && bash scripts/ensure_postgres.sh
(( REPLICAS > 1 )) && bash scripts/ensure_haproxy.sh
export PATH="$HOME/.dapr/bin:$PATH"
if [[ -f .env ]]; then set -a; . ./.env; set +a; fi
# A local run without tokens configured uses the development tokens of env.template.
[[ -z "${API_TOKENS:-}" ]] && export DEV_MODE="${DEV_MODE:-true}"
# daprd and the app authenticate each other, one token per direction (README, Security):
# DAPR_API_TOKEN (app -> daprd) and APP_API_TOKEN (daprd -> app). Unless set in the environment
# they are generated once per installation into .data/secrets/ (this user only), never printed.
secret() {  # $1 file name under .data/secrets; prints the token, generating it the first time
  local file=".data/secrets/$1"
  if [[ ! -s "$file" ]]; then
    (umask 077; mkdir -p .data/secrets
     .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$file.tmp" && mv "$file.tmp" "$file")
  fi
  cat "$file"
}
DAPR_API_TOKEN="${DAPR_API_TOKEN:-$(secret dapr-api-token)}"
APP_API_TOKEN="${APP_API_TOKEN:-$(secret app-api-token)}"
export DAPR_API_TOKEN APP_API_TOKEN
# Components read these through the env secret store; empty means "use the default".
export OPENAI_API_KEY="${OPENAI_API_KEY:-}" OPENAI_BASE_URL="${OPENAI_BASE_URL:-}" LLM_MODEL="${LLM_MODEL:-}"

CLUSTER=(.venv/bin/python scripts/cluster.py --replicas "$REPLICAS" --profile "$PROFILE")
stop_all() {
  trap - INT TERM EXIT
  # Output may go to a pipe that Ctrl-C already closed (make run | tee): a write must not end
  # the clean-up half way and leave processes running.
  trap '' PIPE
  echo "[run] stopping" >&2 || true
  [[ -n "${TAIL_PID:-}" ]] && kill -- "-$TAIL_PID" 2>/dev/null || true
  "${CLUSTER[@]}" down || true
}
trap stop_all INT TERM EXIT

mkdir -p .data/state .data/logs
# The profile's resources for this run (redis port, data paths), rewritten at every start.
rm -rf ".data/resources-$PROFILE"
"${CLUSTER[@]}" up --load-sample-data
if (( REPLICAS > 1 )); then
  echo "[run] API on http://127.0.0.1:8000 through HAProxy (stats: http://127.0.0.1:8404/), apps on :8001-:$((8000 + REPLICAS))," >&2
else
  echo "[run] API on http://127.0.0.1:8000 (docs: /docs)," >&2
fi
echo "[run] customer mail on http://127.0.0.1:8025; logs in .data/logs/; status: .venv/bin/supervisorctl -c .data/run/supervisord.conf status. Ctrl-C stops everything." >&2
# supervisord's log says each crash and restart: reported here as they happen.
touch .data/logs/supervisord.log
# In a session of its own, so that stopping it stops the whole pipeline.
setsid bash -c 'tail -n 0 -F .data/logs/supervisord.log 2>/dev/null \
  | grep --line-buffered -E "exited|spawned|gave up|entered FATAL" | sed -u "s/^/[run] supervisor: /" >&2' &
TAIL_PID=$!
# Runs until Ctrl-C (or supervisord itself ends).
while .venv/bin/supervisorctl -c .data/run/supervisord.conf pid >/dev/null 2>&1; do sleep 2; done
echo "[run] supervisord ended" >&2
