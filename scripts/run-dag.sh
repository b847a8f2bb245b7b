#!/usr/bin/env bash
# README command 1: install, then run the blofin_daily DAG end to end on the embedded
# default (synthetic market, offline design/tuning/review) and say where the results are.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$BLOFIN_ROOT/scripts/setup.sh"
DATE="${1:-$(date -u +%Y-%m-%d)}"
echo "==> airflow dags test blofin_daily $DATE"
start=$(date +%s)
airflow dags test blofin_daily "$DATE"
echo "==> DAG run took $(( $(date +%s) - start )) s"
python -m blofin_pipeline where --date "$DATE"
