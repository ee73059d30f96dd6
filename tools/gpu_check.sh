#!/usr/bin/env bash
# One command for a GPU machine: does fgd_mmrazor work here, and what does
# distillation cost on this GPU?
#
#   bash tools/gpu_check.sh [OUT_DIR]        (default work_dirs/gpu_check)
#
# 1. mmcv's ops fit the installed torch (NMS on the GPU);
# 2. the CUDA tests (pytest -m cuda): masks and sparse adapters against the
#    CPU and dense results, the fp32 imitation path under fp16 autocast,
#    GradScaler, host-device syncs, the safe loader, and training through
#    tools/train.py with and without --amp;
# 3. a short demo distillation (configs/demo/fgd_yolov5n_from_s_trees.py,
#    7 iterations an epoch, an untrained teacher unless FGD_TEACHER_CKPT is
#    set; it checks the pipeline, not the accuracy), fp32 and --amp;
# 4. the CUDA benchmark (tools/benchmark.py --device cuda --profile);
# and prints a summary (also OUT_DIR/summary.md).
#
# Uses the Python that already has the OpenMMLab stack, or builds the pinned
# environment (tools/setup_env.sh). The demo needs data/trees
# (python tools/prepare_trees.py; skipped without it).
#
# Variables: FGD_GPU_CHECK_EPOCHS (demo epochs, default 10),
# FGD_GPU_CHECK_WORK (scratch work dirs, default OUT_DIR/work),
# FGD_TEACHER_CKPT, BENCH_ARGS (default "--batch 16 --img 640").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-work_dirs/gpu_check}"
WORK="${FGD_GPU_CHECK_WORK:-$OUT_DIR/work}"
EPOCHS="${FGD_GPU_CHECK_EPOCHS:-10}"
mkdir -p "$OUT_DIR" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
if ! "$PY" -c "import fgd_mmrazor, mmcv.ops, mmdet, mmyolo, mmrazor" \
        2>/dev/null; then
    # shellcheck source=tools/setup_env.sh
    source tools/setup_env.sh
    PY=python  # the venv's
fi
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "== $* ($(date +%T))"; }

step "GPU and mmcv"
"$PY" -c "import torch; assert torch.cuda.is_available(), \
'torch sees no GPU'; print(torch.__version__, torch.cuda.get_device_name(0))" \
    || exit 1
"$PY" tools/mmcv_wheel.py check | tee "$OUT_DIR/mmcv.txt" || exit 1

step "CUDA tests"
"$PY" -m pytest -m cuda tests/test_cuda -q -rs -p no:randomly \
    2>&1 | tee "$OUT_DIR/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "demo distillation, $EPOCHS epochs"
if [ -f data/trees/train/annotations.json ]; then
    teacher="model.teacher_ckpt_required=False"
    [ -n "${FGD_TEACHER_CKPT:-}" ] && \
        teacher="model.teacher_ckpt=$FGD_TEACHER_CKPT"
    for amp in "" "--amp"; do
        name="demo${amp:+_amp}"
        # shellcheck disable=SC2086
        "$PY" tools/train.py configs/demo/fgd_yolov5n_from_s_trees.py \
            --work-dir "$WORK/$name" $amp --cfg-options "$teacher" \
            train_cfg.max_epochs="$EPOCHS" train_cfg.val_interval="$EPOCHS" \
            default_hooks.checkpoint.interval="$EPOCHS" \
            default_hooks.logger.interval=7 \
            > "$OUT_DIR/$name.log" 2>&1 || { status=1;
            tail -20 "$OUT_DIR/$name.log"; }
    done
else
    echo "no data/trees: run python tools/prepare_trees.py for this part"
fi

step "CUDA benchmark"
# shellcheck disable=SC2086
"$PY" tools/benchmark.py --device cuda ${BENCH_ARGS:---batch 16 --img 640} \
    --profile --json "$OUT_DIR/benchmark_cuda.json" \
    2>&1 | tee "$OUT_DIR/benchmark.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "summary"
"$PY" -m fgd_mmrazor.analysis.gpu_check "$OUT_DIR" "$WORK" \
    | tee "$OUT_DIR/summary.md"
exit $status
