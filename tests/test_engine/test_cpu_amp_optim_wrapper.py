"""--amp on CPU (bfloat16 autocast) and seeded determinism of a
distillation run."""
import math
import os.path as osp

import torch
from mmengine.runner import Runner

from fgd_mmrazor.engine.cli_config import prepare_cfg
from ..conftest import CONFIGS
from .test_train_smoke import read_scalars
from ..utils import tiny_cfg

DISTILL = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')
NO_TEACHER = {'model.teacher_ckpt_required': False,
              'randomness.seed': 123}


def test_amp_on_cpu_autocasts_bf16_and_stays_finite(tiny_coco, tmp_path):
    cfg = tiny_cfg(DISTILL, tiny_coco, str(tmp_path / 'amp'),
                   options=NO_TEACHER)
    prepare_cfg(cfg, amp=True)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    runner = Runner.from_cfg(cfg)
    dtypes = []
    runner.model.student.neck.out_layers[0].register_forward_hook(
        lambda m, i, o: dtypes.append(o.dtype))
    runner.train()
    assert torch.bfloat16 in dtypes
    rows = [r for r in read_scalars(str(tmp_path / 'amp')) if 'loss' in r]
    assert rows
    for r in rows:
        for k, v in r.items():
            if 'loss' in k:
                assert math.isfinite(v), (k, v)


def first_losses(tiny_coco, work_dir, seed=123):
    """Losses of the first training batch of a freshly built runner."""
    cfg = tiny_cfg(DISTILL, tiny_coco, work_dir,
                   options={**NO_TEACHER, 'randomness.seed': seed})
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner._init_model_weights()  # what runner.train() does first
    model = runner.model
    model.train()
    batch = next(iter(runner.train_dataloader))
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    return {k: float(v.sum()) for k, v in losses.items()}


def test_same_seed_same_first_losses(tiny_coco, tmp_path):
    a = first_losses(tiny_coco, str(tmp_path / 'a'))
    b = first_losses(tiny_coco, str(tmp_path / 'b'))
    assert set(a) >= {'distill.loss_imitation_p3', 'student.loss_obj'}
    for k in a:
        assert math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=1e-9), (
            k, a[k], b[k])
    # ...and the seed matters (the equality above is not trivial).
    c = first_losses(tiny_coco, str(tmp_path / 'c'), seed=124)
    assert any(not math.isclose(a[k], c[k], rel_tol=1e-6) for k in a)
