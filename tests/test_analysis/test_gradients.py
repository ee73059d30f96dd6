"""How much mixed precision changes a step's imitation (the analysis
behind tools/diagnose_gradients.py --amp-compare)."""
import contextlib
import math

import torch

from fgd_mmrazor.analysis.gradients import amp_differences
from ..test_models.conftest import (TWO_IMAGE_BOXES, three_level_algo,
                                    train_batch)


def test_amp_differences_compare_a_bf16_step_with_fp32(teacher_ckpt,
                                                       monkeypatch):
    algo = three_level_algo(teacher_ckpt)
    boxes = TWO_IMAGE_BOXES
    res = amp_differences(algo, lambda: train_batch(algo, boxes))
    assert set(res['by_level']) <= {
        f'distill.loss_imitation_level{i}' for i in range(3)}
    for key in ('imitation_losses', 'adapter_grads', 'student_grads',
                'student_detection_grads'):
        # bf16 changes every quantity, by less than the quantity itself
        assert math.isfinite(res[key]) and 0 < res[key] < 1, (key, res)
    # the same step twice (no autocast either time) is the same step: the
    # batch and the weights are the same for both
    monkeypatch.setattr(torch, 'autocast',
                        lambda *args, **kwargs: contextlib.nullcontext())
    same = amp_differences(algo, lambda: train_batch(algo, boxes))
    assert same['adapter_grads'] == 0 and same['imitation_losses'] == 0
