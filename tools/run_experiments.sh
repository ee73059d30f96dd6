#!/usr/bin/env bash
# The multi-seed experiments of docs/results.md with the control teacher
# (YOLOv5-s from scratch). Run after
#   python tools/run_demo.py --teacher scratch --work-dir work_dirs/demo_scratch
# which trains the seed-0 teacher and students. Each step is a
# tools/run_demo.py call that can be rerun alone. (The pretrained teacher's
# protocol is tools/run_protocol.sh.)
#   bash tools/run_experiments.sh [SEEDS...]     (default: 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/setup_env.sh
source tools/setup_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
T=work_dirs/demo_scratch/teacher.pth
SEEDS=("${@:-1 2}")
# shellcheck disable=SC2068
for seed in ${SEEDS[@]}; do  # students, seeds > 0
  python tools/run_demo.py --teacher scratch --seed "$seed" --teacher-ckpt "$T" \
    --stages baseline distilled --work-dir "work_dirs/exp/main_seed$seed"
done
for seed in 0 ${SEEDS[@]}; do  # the paper's ablations
  for mode in full gt_box; do
    python tools/run_demo.py --teacher scratch --seed "$seed" --teacher-ckpt "$T" \
      --stages distilled --work-dir "work_dirs/exp/${mode}_seed$seed" \
      --cfg-options model.distiller.mask.mode=$mode
  done
done
# the second family (seed 0): RTMDet-tiny <- RTMDet-s
python tools/run_demo.py --family rtmdet --work-dir work_dirs/demo_rtmdet
for seed in ${SEEDS[@]}; do  # teacher seeds
  python tools/run_demo.py --teacher scratch --seed "$seed" --stages teacher \
    --work-dir "work_dirs/exp/teacher_seed$seed"
done
python tools/summarize_results.py work_dirs/demo_scratch work_dirs/exp
