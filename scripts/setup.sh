#!/usr/bin/env bash
# Install everything the project needs, inside the project: a venv from the pinned
# requirements.txt, the Airflow metadata DB, the pool and the default connections.
# Idempotent: a second run only checks.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BLOFIN_ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
stamp=".venv/.requirements.sha256"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing into .venv (pinned requirements.txt)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
  fi
  .venv/bin/uv pip install -q --compile-bytecode -p .venv/bin/python -r requirements.txt
  .venv/bin/uv pip install -q --compile-bytecode -p .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi

mkdir -p "$AIRFLOW_HOME" "$BLOFIN_WORKSPACE/data/reports"
echo "==> Airflow metadata DB in $AIRFLOW_HOME"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
airflow pools set anthropic_api 3 "Claude API calls (seed: max 3 workers to avoid rate limits)" >/dev/null
if ! airflow connections get blofin_db >/dev/null 2>&1; then
  airflow connections add blofin_db --conn-type sqlite --conn-host "$BLOFIN_WORKSPACE/data/blofin_monitor.db" >/dev/null
fi
python -m blofin_pipeline init-db >/dev/null
echo "==> ready: AIRFLOW_HOME=$AIRFLOW_HOME BLOFIN_WORKSPACE=$BLOFIN_WORKSPACE"
