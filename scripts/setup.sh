#!/usr/bin/env bash
# Install everything the project needs, inside the project: a venv from the pinned
# requirements.txt, the Airflow metadata DB, the pool and the default connections.
# Idempotent: a second run only checks. Each stage says what it does before it starts
# (the package install shows uv's own progress: what it resolves, downloads, installs).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BLOFIN_ROOT"
SECONDS=0
stage() { printf '==> [%s/6] %s\n' "$1" "$2"; }

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
stamp=".venv/.requirements.sha256"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if [ ! -x .venv/bin/python ]; then
    stage 1 "creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv .venv
  else
    stage 1 ".venv exists; requirements.txt or pyproject.toml changed"
  fi
  if [ ! -x .venv/bin/uv ]; then
    stage 2 "installing the installer (uv 0.13.9, with pip)"
    .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
  else
    stage 2 "uv already in .venv"
  fi
  stage 3 "installing $(grep -cE '^[A-Za-z0-9]' requirements.txt) pinned packages from requirements.txt (Airflow, pandas, LightGBM, ...; a few minutes from a cold cache)"
  .venv/bin/uv pip install --compile-bytecode -p .venv/bin/python -r requirements.txt
  stage 4 "installing blofin-pipeline itself (editable)"
  .venv/bin/uv pip install --compile-bytecode -p .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
else
  stage 1 ".venv up to date with requirements.txt: nothing to install (stages 2-4 skipped)"
fi

mkdir -p "$AIRFLOW_HOME" "$BLOFIN_WORKSPACE/data/reports"
stage 5 "Airflow metadata DB in $AIRFLOW_HOME (airflow db migrate; about half a minute the first time, log in db-migrate.log)"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
stage 6 "pool anthropic_api, connection blofin_db and the data database's schema"
airflow pools set anthropic_api 3 "Claude API calls (seed: max 3 workers to avoid rate limits)" >/dev/null
if ! airflow connections get blofin_db >/dev/null 2>&1; then
  airflow connections add blofin_db --conn-type sqlite --conn-host "$BLOFIN_WORKSPACE/data/blofin_monitor.db" >/dev/null
fi
python -m blofin_pipeline init-db >/dev/null
echo "==> ready in ${SECONDS}s: AIRFLOW_HOME=$AIRFLOW_HOME BLOFIN_WORKSPACE=$BLOFIN_WORKSPACE"
