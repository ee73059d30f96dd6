#!/usr/bin/env bash
# The main job on the bundled demo data (sets up the environment first):
#   bash tools/run_demo.sh [--full] [--seed N] [--force]
# Writes work_dirs/demo/report.md and report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/setup_env.sh
source tools/setup_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python tools/run_demo.py "$@"
