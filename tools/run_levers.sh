#!/usr/bin/env bash
# The lever protocol of docs/results.md ("Where the teacher's knowledge
# lives"), fixed before any result was seen: fold 0 (the default split),
# seeds 0-2, val only, one thread per run, two runs at a time; every run
# is reused when done (tools/compare_methods.py), so a stopped queue picks
# up where it stopped.
#
#   bash tools/run_levers.sh teacher        # (b) the frozen-backbone teacher
#                                           # and today's, by their val mAP
#   bash tools/run_levers.sh a TEACHER      # (a) teacher layers: neck (the
#        # default), stage outputs (tbb), expansion features (texp), each
#        # at loss_weight 0.001 0.01 0.1 1
#   bash tools/run_levers.sh c TEACHER TLAYERS  # (c) the student's
#        # backbone stages instead of its neck, at 0.001 0.01 0.1 1, with
#        # the teacher layers chosen by (a) (neck | tbb | texp); added to
#        # (a)'s table, whose runs it reuses
#   bash tools/run_levers.sh check TEACHER  # the pre-flight check of each
#                                           # teacher-layer choice
# Results: work_dirs/levers/a/compare.md, work_dirs/levers/check_*.json
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/setup_env.sh
source tools/setup_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
W=work_dirs/levers
L=configs/demo/levers/fgd_yolov5n_from_mnv2_trees
DEFAULT=configs/demo/fgd_yolov5n_from_mnv2_trees.py
LWS="0.001 0.01 0.1 1"
# A config of one lever at one loss_weight (written into the work dir).
variant() {  # NAME BASE LW -> path
  local path="$PWD/$W/configs/$1.py"
  mkdir -p "$(dirname "$path")"
  printf "_base_ = '%s'\nmodel = dict(distiller=dict(loss=dict(loss_weight=%s)))\n" \
    "$PWD/$2" "$3" > "$path"
  echo "$path"
}
layers() {  # neck | tbb | texp -> the config of those teacher layers
  case "$1" in neck) echo $DEFAULT ;; *) echo "${L}_$1.py" ;; esac
}
a_methods() {  # the methods of (a), into the array "methods"
  local tl lw
  methods=("default=$(variant default $DEFAULT 0.001)")
  for tl in tbb texp; do
    for lw in $LWS; do
      methods+=("${tl}_lw$lw=$(variant "${tl}_lw$lw" "$(layers $tl)" "$lw")")
    done
  done
}
compare() {  # WORK TEACHER METHODS...
  local work=$1 teacher=$2; shift 2
  python tools/compare_methods.py --no-weight-rule --seeds 0 1 2 \
    --jobs 2 --threads 1 --teacher-ckpt "$teacher" \
    --work-dir "$work" --methods "$@"
}
case "${1:-}" in
  teacher)
    python - <<'PY'
import json
import fgd_mmrazor  # noqa: F401
from fgd_mmrazor.experiments.runs import (epoch_options, evaluate_checkpoint,
                                          train_run)
from fgd_mmrazor.utils.export import export_student
W = 'work_dirs/levers'
options = [f'{k}={v}' for k, v in epoch_options(40).items()]
out = {}
for name, cfg in (('frozen', 'configs/demo/yolov5_mnv2_frozen_trees.py'),):
    done = train_run(cfg, f'{W}/teacher_{name}', options + ['randomness.seed=0'])
    plain = f'{W}/teacher_{name}.pth'
    export_student(done['checkpoint'], plain)
    out[name] = dict(evaluate_checkpoint(cfg, plain, f'{W}/eval_teacher_{name}'),
                     checkpoint=plain)
out['today'] = dict(evaluate_checkpoint(
    'configs/demo/yolov5_mnv2_trees.py', 'work_dirs/demo/teacher.pth',
    f'{W}/eval_teacher_today'), checkpoint='work_dirs/demo/teacher.pth')
json.dump(out, open(f'{W}/teachers.json', 'w'), indent=2)
print(json.dumps(out, indent=2))
PY
    ;;
  a)
    teacher=${2:?the teacher checkpoint chosen by "teacher"}
    a_methods
    compare $W/a "$teacher" "${methods[@]}"
    ;;
  c)
    teacher=${2:?teacher checkpoint}; tl=${3:?teacher layers chosen by a}
    base=$W/configs/sbb_$tl.py
    mkdir -p $W/configs
    printf "_base_ = '%s'\nmodel = dict(distiller=dict(student_layers=[\n    'backbone.stage2', 'backbone.stage3', 'backbone.stage4']))\n" \
      "$PWD/$(layers "$tl")" > "$base"
    # (a)'s runs (the student alone, its choice) are reused: same work dir.
    a_methods
    for lw in $LWS; do
      methods+=("sbb_${tl}_lw$lw=$(variant "sbb_${tl}_lw$lw" "$base" "$lw")")
    done
    compare $W/a "$teacher" "${methods[@]}"
    ;;
  check)
    teacher=${2:?teacher checkpoint}
    for tl in neck tbb texp; do
      python tools/check_teacher.py "$(layers $tl)" --teacher-ckpt "$teacher" \
        --student-ckpt work_dirs/demo/baseline.pth --out "$W/check_$tl.json"
    done
    ;;
  *) sed -n 2,19p "$0"; exit 2 ;;
esac
