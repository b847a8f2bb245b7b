# Environment of the project: Airflow home, DAGs, plugins and workspace all inside the
# project (git-ignored). Source it: `. scripts/env.sh`.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BLOFIN_ROOT="$ROOT"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/airflow_home}"
export BLOFIN_WORKSPACE="${BLOFIN_WORKSPACE:-$ROOT/workspace}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$ROOT/plugins}"  # bench/dag_scale.py sets its own
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DEFAULT_TIMEZONE=utc
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
export PYTHONPATH="$ROOT/plugins:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$ROOT/.venv/bin:$PATH"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # idle OpenMP threads must not spin on shared cores (ML fits 2-5x slower)
# The local server's SQLite metadata database: wait up to 60 s for its one writer (plugins/blofin_airflow_db.py).
case "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite}" in
  sqlite*) export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS:-blofin_airflow_db.SQLITE_CONNECT_ARGS}" ;;
esac
