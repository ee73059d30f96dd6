#!/usr/bin/env bash
# Run the test suite on the reference stack (official releases, no patches):
# torch 1.13.1, numpy<2, mmcv 2.0.1, mmengine 0.10.7, mmdet 3.3.0,
# official mmyolo 0.6.0, mmrazor 1.0.0. Builds its own environment once
# (requirements/reference/, mmcv 2.0.1 compiled from its sdist: about
# 10 min on 2 cores, cached), then runs pytest:
#   bash tools/run_tests_reference.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
FGD_STACK=reference exec bash tools/run_tests.sh "$@"
