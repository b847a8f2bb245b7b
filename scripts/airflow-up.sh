#!/usr/bin/env bash
# Start Airflow 3 for this project in the background, bound to 127.0.0.1:
# api-server (UI + REST API), scheduler and dag-processor (+ triggerer, + Celery workers
# when the executor is CeleryExecutor), all in ONE new session / process group so that
# scripts/airflow-down.sh stops every process it started, task runners included.
#
#   scripts/airflow-up.sh [--port N] [--workers N] [--triggerer] [--no-setup] [--timeout S]
#
# Environment (all optional):
#   AIRFLOW_PORT            port of the UI/API (default 8080; --port wins)
#   BLOFIN_ADMIN_USER       login of the simple auth manager's admin (default admin)
#   BLOFIN_ADMIN_PASSWORD   its password (default admin; written to the passwords file)
#   AIRFLOW__CORE__EXECUTOR LocalExecutor (default) or CeleryExecutor (then set
#                           AIRFLOW__CELERY__BROKER_URL / RESULT_BACKEND and a PostgreSQL
#                           AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)
#   BLOFIN_CELERY_WORKERS   Celery workers to start with CeleryExecutor (default 1; --workers)
#   BLOFIN_WORKER_CONCURRENCY  task slots per Celery worker (default 2)
#   AIRFLOW_HOME / BLOFIN_WORKSPACE  see scripts/env.sh
#
# Logs of the services: $AIRFLOW_HOME/logs/services/*.log; task logs: $AIRFLOW_HOME/logs/dag_id=...
# New DAGs start paused: unpause blofin_daily in the UI (toggle) or with
#   airflow dags unpause blofin_daily
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BLOFIN_ROOT"

PORT="${AIRFLOW_PORT:-8080}"
WORKERS="${BLOFIN_CELERY_WORKERS:-1}"
TRIGGERER="${BLOFIN_TRIGGERER:-0}"
SETUP=1
TIMEOUT="${BLOFIN_UP_TIMEOUT:-240}"
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --triggerer) TRIGGERER=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "airflow-up: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

ADMIN_USER="${BLOFIN_ADMIN_USER:-admin}"
ADMIN_PASSWORD="${BLOFIN_ADMIN_PASSWORD:-admin}"
EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
URL="http://127.0.0.1:$PORT"
PIDFILE="$AIRFLOW_HOME/airflow-up.pid"
SERVICE_LOGS="$AIRFLOW_HOME/logs/services"

# Everything the services must agree on goes through the environment, so every process
# (and every task runner they start) sees the same values.
export AIRFLOW__CORE__EXECUTOR="$EXECUTOR"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="$URL"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$URL/execution/"
export AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="$ADMIN_USER:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

running_pids() {  # processes of the session started by this script, if any
  [ -f "$PIDFILE" ] || return 0
  pgrep -s "$(cat "$PIDFILE")" 2>/dev/null || true
}

if [ -n "$(running_pids)" ]; then
  echo "==> Airflow is already running (session $(cat "$PIDFILE")): $(cat "$AIRFLOW_HOME/airflow-up.url" 2>/dev/null)" \
       "(stop: scripts/airflow-down.sh)"
  exit 0
fi

if python - "$PORT" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
then
  echo "airflow-up: port $PORT on 127.0.0.1 is in use: choose another with --port N" >&2
  exit 1
fi

if [ "$SETUP" = 1 ]; then
  "$BLOFIN_ROOT/scripts/setup.sh"
fi
mkdir -p "$SERVICE_LOGS"

# A deterministic login: the simple auth manager takes the passwords from this file and
# only generates one for users that are missing in it.
umask_old="$(umask)"; umask 077
python - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "$ADMIN_USER" "$ADMIN_PASSWORD" <<'EOF'
import json, sys
path, user, password = sys.argv[1:4]
with open(path, "w") as fh:
    fh.write(json.dumps({user: password}) + "\n")
EOF
umask "$umask_old"

echo "==> starting Airflow ($EXECUTOR) on $URL, service logs in $SERVICE_LOGS"
# setsid: a new session whose id is the leader's pid. The leader waits for its children,
# so the whole tree (task runners put themselves into their own process groups, but stay
# in this session) is found again with `pgrep -s SID` by airflow-down.sh.
EXECUTOR="$EXECUTOR" WORKERS="$WORKERS" TRIGGERER="$TRIGGERER" PIDFILE="$PIDFILE" LOGDIR="$SERVICE_LOGS" \
CONCURRENCY="${BLOFIN_WORKER_CONCURRENCY:-2}" \
setsid bash -c '
  echo $$ > "$PIDFILE"
  airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT" >"$LOGDIR/api-server.log" 2>&1 &
  # --skip-serve-logs: the log server would listen on all interfaces (port 8793); on one
  # machine the api-server reads the task log files itself.
  airflow scheduler --skip-serve-logs >"$LOGDIR/scheduler.log" 2>&1 &
  airflow dag-processor >"$LOGDIR/dag-processor.log" 2>&1 &
  if [ "$TRIGGERER" = 1 ]; then airflow triggerer --skip-serve-logs >"$LOGDIR/triggerer.log" 2>&1 & fi
  if [ "$EXECUTOR" = CeleryExecutor ]; then
    for i in $(seq 1 "$WORKERS"); do
      BLOFIN_WORKER_NAME="worker$i" \
      airflow celery worker --celery-hostname "worker$i@%h" --concurrency "$CONCURRENCY" --skip-serve-logs \
        >"$LOGDIR/worker$i.log" 2>&1 &
    done
  fi
  wait
' </dev/null >"$SERVICE_LOGS/supervisor.log" 2>&1 &

for _ in $(seq 1 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
echo "$URL" > "$AIRFLOW_HOME/airflow-up.url"

health() {
  python - "$URL" "$TRIGGERER" <<'EOF'
import json, sys, urllib.request
url, triggerer = sys.argv[1], sys.argv[2] == "1"
try:
    with urllib.request.urlopen(url + "/api/v2/monitor/health", timeout=5) as resp:
        body = json.load(resp)
except Exception:
    sys.exit(1)
wanted = ["metadatabase", "scheduler", "dag_processor"] + (["triggerer"] if triggerer else [])
sys.exit(0 if all((body.get(k) or {}).get("status") == "healthy" for k in wanted) else 1)
EOF
}

deadline=$(( $(date +%s) + TIMEOUT ))
until health; do
  if [ -z "$(running_pids)" ]; then
    echo "airflow-up: the services exited; last lines of their logs:" >&2
    tail -n 20 "$SERVICE_LOGS"/*.log >&2 || true
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "airflow-up: not healthy after ${TIMEOUT}s; logs in $SERVICE_LOGS (stop: scripts/airflow-down.sh)" >&2
    tail -n 20 "$SERVICE_LOGS"/*.log >&2 || true
    exit 1
  fi
  sleep 2
done

if [ "$EXECUTOR" = CeleryExecutor ]; then  # each worker logs "<name>@<host> ready." once connected
  for i in $(seq 1 "$WORKERS"); do
    until grep -q "worker$i@.* ready\." "$SERVICE_LOGS/worker$i.log" 2>/dev/null; do
      if [ "$(date +%s)" -ge "$deadline" ] || [ -z "$(running_pids)" ]; then
        echo "airflow-up: Celery worker $i not ready; its log: $SERVICE_LOGS/worker$i.log" >&2
        tail -n 20 "$SERVICE_LOGS/worker$i.log" >&2 || true
        exit 1
      fi
      sleep 2
    done
  done
fi

cat <<EOF
==> Airflow is up: $URL   (executor $EXECUTOR$([ "$EXECUTOR" = CeleryExecutor ] && echo ", $WORKERS Celery workers"), session $(cat "$PIDFILE"))
    log in as '$ADMIN_USER' with password '$ADMIN_PASSWORD' (set BLOFIN_ADMIN_PASSWORD to change it)
    the DAG blofin_daily starts paused: unpause it with the toggle in the UI or
      airflow dags unpause blofin_daily
    REST API: TOKEN=\$(curl -s -X POST $URL/auth/token -H 'Content-Type: application/json' \\
                -d '{"username":"$ADMIN_USER","password":"$ADMIN_PASSWORD"}' | python -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
              curl -H "Authorization: Bearer \$TOKEN" $URL/api/v2/dags/blofin_daily
    service logs: $SERVICE_LOGS   stop: scripts/airflow-down.sh
EOF
