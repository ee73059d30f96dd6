#!/usr/bin/env bash
# The recipe protocol of docs/results.md ("Which recipe transfers a
# pretrained teacher"), in three phases fixed before any result was seen.
# Each step is a tools/run_demo.py call that is reused when already done.
#
#   bash tools/run_demo.sh                       # the pretrained teacher
#   bash tools/run_protocol.sh teachers          # the scratch teacher
#   bash tools/run_protocol.sh alone ROOT SEEDS  # students alone
#   bash tools/run_protocol.sh sweep [SEEDS [LWS]]   # seeds 0-2: loss_weight
#                        # 0.001 0.01 0.1 1.0, the paper's 3x3 adapters
#   bash tools/run_protocol.sh levers LW [SEEDS [LEVERS]]  # the other levers
#          # at LW: configs/demo/recipe/*_{authors,warmup70,p3p4,3x3}.py and
#          # the demo's default (1x1 adapter, warm-up 35 + 35)
#   bash tools/run_protocol.sh alone work_dirs/final "3 4 5 6 7"
#   bash tools/run_protocol.sh final [SEEDS [TEACHERS]]  # seeds 3-7, frozen
#                                  # defaults, pretrained and scratch
#   python tools/summarize_results.py work_dirs/protocol   (seeds 0-2)
#   python tools/summarize_results.py work_dirs/final      (seeds 3-7)
# Every student run uses one thread (OMP_NUM_THREADS=1), so that two calls
# with disjoint SEEDS/LWS can share a 2-core machine; the pairs (same seed,
# alone vs distilled) are always run with the same thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/setup_env.sh
source tools/setup_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PRE=work_dirs/demo/teacher.pth             # tools/run_demo.py (default)
SCR=work_dirs/demo_scratch/teacher.pth
R=configs/demo/recipe/fgd_yolov5n_from_mnv2_trees
demo() { python tools/run_demo.py "$@"; }
alone() { demo --seed "$2" --stages baseline --work-dir "$1/alone_seed$2"; }
case "${1:-}" in
  teachers)
    demo --teacher scratch --stages teacher --work-dir work_dirs/demo_scratch
    ;;
  alone)
    for seed in $3; do alone "$2" "$seed"; done
    ;;
  sweep)
    for seed in ${2:-0 1 2}; do
      for lw in ${3:-0.001 0.01 0.1 1.0}; do
        demo --seed "$seed" --teacher-ckpt $PRE --stages distilled \
          --work-dir "work_dirs/protocol/lw${lw}_seed$seed" \
          --distilled-config "${R}_3x3.py" \
          --cfg-options model.distiller.loss.loss_weight=$lw
      done
    done
    ;;
  levers)
    lw=${2:?loss_weight chosen by the sweep}
    for seed in ${3:-0 1 2}; do
      for lever in ${4:-authors warmup70 p3p4 default}; do
        config="${R}_${lever}.py"  # configs/demo/recipe/
        [ "$lever" = default ] && config=configs/demo/fgd_yolov5n_from_mnv2_trees.py
        demo --seed "$seed" --teacher-ckpt $PRE --stages distilled \
          --work-dir "work_dirs/protocol/lw${lw}_${lever}_seed$seed" \
          --distilled-config "$config" \
          --cfg-options model.distiller.loss.loss_weight="$lw"
      done
    done
    ;;
  final)
    for seed in ${2:-3 4 5 6 7}; do
      for teacher in ${3:-pretrained scratch}; do
        ckpt=$PRE; [ "$teacher" = scratch ] && ckpt=$SCR
        demo --seed "$seed" --teacher "$teacher" --teacher-ckpt "$ckpt" \
          --stages distilled --work-dir "work_dirs/final/${teacher}_seed$seed"
      done
    done
    ;;
  *) sed -n 2,20p "$0"; exit 2 ;;
esac
