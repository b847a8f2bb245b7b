#!/usr/bin/env bash
# README command 2: install, then run the whole test suite (add -m "not slow" for the fast part).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$BLOFIN_ROOT/scripts/setup.sh"
cd "$BLOFIN_ROOT"
exec python -m pytest -n 2 --dist loadgroup -p no:cacheprovider "$@"
