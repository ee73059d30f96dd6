#!/usr/bin/env bash
# Run the test suite (sets up the pinned environment first if missing):
#   bash tools/run_tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/setup_env.sh
source tools/setup_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python -m pytest "$@"
