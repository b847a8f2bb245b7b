#!/usr/bin/env bash
# README command 2: install, then run the whole test suite (add -m "not slow" for the fast part).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$BLOFIN_ROOT/scripts/setup.sh"
cd "$BLOFIN_ROOT"
# The benchmark peers (vectorbt, backtesting.py) live in their own venv: the vectorbt
# agreement test runs its side there. Never a runtime dependency.
want="$(sha256sum bench/requirements.txt | cut -d' ' -f1)"
if [ "$(cat .venv-bench/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  echo "==> installing the benchmark peers into .venv-bench (bench/requirements.txt)"
  [ -x .venv-bench/bin/python ] || .venv/bin/uv venv -q -p .venv/bin/python .venv-bench
  .venv/bin/uv pip install -q --compile-bytecode -p .venv-bench/bin/python -r bench/requirements.txt
  echo "$want" > .venv-bench/.requirements.sha256
fi
# --dist loadfile: each file on one worker, so a module-scoped Airflow server is started once.
# (loadgroup split xdist_group-marked modules over both workers with pytest 9.2 + xdist 3.8.)
exec python -m pytest -n 2 --dist loadfile -p no:cacheprovider -rs "$@"
