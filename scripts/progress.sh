# Sourced by the install scripts (set PROGRESS_TAG first): `log` with the clock and the elapsed
# time, and `with_progress WHAT CMD...`, which says what it starts, says every 20 s that it still
# runs (a first build takes minutes on two cores and must never look stuck), and how long it took.
# Returns the command's exit code.
START=$SECONDS
log() { echo "[${PROGRESS_TAG:-install} $(date +%H:%M:%S) +$((SECONDS - START))s] $*" >&2; }
with_progress() {  # $1 what, then the command
  local what=$1; shift
  local began=$SECONDS last=$SECONDS pid status
  log "$what"
  "$@" & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - last >= 20 )); then log "  still $what ($((SECONDS - began))s)"; last=$SECONDS; fi
    sleep 1
  done
  wait "$pid" && status=0 || status=$?
  (( status == 0 )) && log "  done in $((SECONDS - began))s" || log "  FAILED ($what, exit $status)"
  return "$status"
}
