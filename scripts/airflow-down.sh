#!/usr/bin/env bash
# Stop what scripts/airflow-up.sh started: SIGTERM to its process group (every Airflow
# service shuts down gracefully on it; SIGINT would be ignored by the background jobs of
# a non-interactive shell), then SIGTERM and at last SIGKILL to every process left in its
# session (task runners sit in process groups of their own, Celery pool processes), so
# nothing is orphaned.
#
#   scripts/airflow-down.sh [--timeout S]     (uses $AIRFLOW_HOME/airflow-up.pid)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

TIMEOUT="${BLOFIN_DOWN_TIMEOUT:-45}"
[ "${1:-}" = "--timeout" ] && TIMEOUT="$2"
PIDFILE="$AIRFLOW_HOME/airflow-up.pid"

if [ ! -s "$PIDFILE" ]; then
  echo "==> no Airflow started by airflow-up.sh for AIRFLOW_HOME=$AIRFLOW_HOME"
  exit 0
fi
SID="$(cat "$PIDFILE")"
left() { pgrep -s "$SID" 2>/dev/null || true; }

wait_gone() {  # wait_gone SECONDS: 0 once the session is empty
  local end=$(( $(date +%s) + $1 ))
  while [ -n "$(left)" ]; do
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.5
  done
}

if [ -z "$(left)" ]; then
  echo "==> Airflow (session $SID) is not running"
  rm -f "$PIDFILE"
  exit 0
fi

echo "==> stopping Airflow (session $SID): SIGTERM"
kill -TERM -- "-$SID" 2>/dev/null || true
if ! wait_gone "$TIMEOUT"; then
  echo "==> still running after ${TIMEOUT}s: SIGTERM to $(left | wc -l) processes"
  pkill -TERM -s "$SID" 2>/dev/null || true
  if ! wait_gone 15; then
    echo "==> still running: SIGKILL"
    pkill -KILL -s "$SID" 2>/dev/null || true
    wait_gone 10 || { echo "airflow-down: processes left in session $SID: $(left | tr '\n' ' ')" >&2; exit 1; }
  fi
fi
rm -f "$PIDFILE" "$AIRFLOW_HOME/airflow-up.url"
echo "==> Airflow stopped"
