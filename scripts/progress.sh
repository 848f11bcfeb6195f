# Sourced by the install scripts: `log` with the elapsed time, and `with_progress WHAT CMD...`
# that runs CMD and says every 20 s that it still runs. Set PROGRESS_TAG before sourcing.
START=$SECONDS
log() { echo "[${PROGRESS_TAG:-install} +$((SECONDS - START))s] $*" >&2; }
with_progress() {  # $1 what, then the command
  local what=$1; shift
  local last=$SECONDS pid
  "$@" & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - last >= 20 )); then log "still $what"; last=$SECONDS; fi
    sleep 1
  done
  wait "$pid"
}
