"""A few training iterations of the YOLOv5-s <- YOLOv5-l config through
mmengine's Runner, on tiny COCO data made by the test."""
import glob
import json
import math
import os.path as osp

import torch
from mmengine.hub import get_model
from mmengine.runner import Runner

from fgd_mmrazor.utils import safe_load
from ..conftest import CONFIGS
from ..utils import tiny_cfg

TEACHER = 'mmyolo::yolov5/yolov5_l-v61_syncbn_fast_8xb16-300e_coco.py'


def read_scalars(work_dir):
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[0]) as f:
        return [json.loads(line) for line in f]


def test_yolov5_pair_trains_and_saves_adapters(tiny_coco80, tmp_path):
    teacher = get_model(TEACHER, pretrained=False)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, teacher_ckpt)
    work_dir = str(tmp_path / 'work')
    cfg = tiny_cfg(
        osp.join(CONFIGS, 'fgd_yolov5s_from_l.py'),
        tiny_coco80,
        work_dir,
        epochs=2,
        val=True,
        classes=None,
        options={'model.teacher_ckpt': teacher_ckpt})
    runner = Runner.from_cfg(cfg)
    model = runner.model
    # The teacher's weights are the checkpoint's, and frozen.
    name, param = next(iter(teacher.state_dict().items()))
    assert torch.equal(model.teacher.state_dict()[name], param)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    adapter = model.distiller.connectors['adapt_p3'].conv_module.conv
    adapter_before = adapter.weight.detach().clone()
    runner.train()  # includes a validation epoch: the student predicts

    assert not model.teacher.training
    assert not model.teacher.backbone.stem.bn.training
    # The algorithm predicts with the student (what validation runs).
    batch = next(iter(runner.val_dataloader))
    preds = model.val_step(batch)
    assert len(preds) == 1 and 'pred_instances' in preds[0]
    assert preds[0].pred_instances.bboxes.shape[-1] == 4
    scalars = read_scalars(work_dir)
    rows = [r for r in scalars if 'loss' in r]
    assert len(rows) == 4  # 2 epochs x 2 iterations
    for level in ('p3', 'p4', 'p5'):
        values = [r[f'distill.loss_imitation_{level}'] for r in rows]
        assert all(math.isfinite(v) and v >= 0 for v in values), values
    assert any(r['distill.loss_imitation_p3'] > 0 for r in rows)
    # The adapters were trained and are saved in the checkpoint.
    adapter_after = adapter.weight
    assert not torch.equal(adapter_before, adapter_after.detach())
    ckpt = safe_load(osp.join(work_dir, 'epoch_2.pth'))
    state = ckpt['state_dict']
    for level, (cin, cout) in zip(('p3', 'p4', 'p5'),
                                  ((128, 256), (256, 512), (512, 1024))):
        weight = state[
            f'distiller.connectors.adapt_{level}.conv_module.conv.weight']
        assert weight.shape == (cout, cin, 3, 3)
    # EMAHook stores the averaged weights in state_dict, the raw ones in
    # ema_state_dict's counterpart: the raw adapter is one of them.
    raw = ckpt['ema_state_dict']
    key = 'distiller.connectors.adapt_p3.conv_module.conv.weight'
    assert any(
        torch.equal(sd[key], adapter_after.detach())
        for sd in (state, {k[len('module.'):]: v
                           for k, v in raw.items()}))
