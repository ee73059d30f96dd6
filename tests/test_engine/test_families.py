"""Every detector family trains a few iterations with imitation on tiny
data at a small input size: mmdet one-stage (RetinaNet), mmdet two-stage
(Faster R-CNN, RPN anchors), mmyolo anchor-free (YOLOv8, anchor
templates). mmyolo anchor-based (YOLOv5) is test_train_smoke.py. The MMRazor
baselines (CWD, PKD, MGD) train on the YOLOv5 pair the same way."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_model
from mmengine.runner import Runner

from ..conftest import CONFIGS
from ..utils import tiny_cfg
from .test_train_smoke import read_scalars

CASES = {
    'retinanet': ('fgd_retinanet_r50_from_r101.py', 'loss_imitation',
                  ['p3', 'p4', 'p5', 'p6', 'p7']),
    'faster_rcnn': ('fgd_faster_rcnn_r50_from_r101.py', 'loss_imitation',
                    ['p2', 'p3', 'p4', 'p5']),
    'yolov8': ('fgd_yolov8_s_from_l.py', 'loss_imitation',
               ['p3', 'p4', 'p5']),
    'rtmdet': ('fgd_rtmdet_tiny_from_s.py', 'loss_imitation',
               ['p3', 'p4', 'p5']),
    'cwd': ('baselines/cwd_yolov5s_from_l.py', 'loss_cwd',
            ['p3', 'p4', 'p5']),
    'pkd': ('baselines/pkd_yolov5s_from_l.py', 'loss_pkd',
            ['p3', 'p4', 'p5']),
    'mgd': ('baselines/mgd_yolov5s_from_l.py', 'loss_mgd',
            ['p3', 'p4', 'p5']),
}


@pytest.mark.parametrize('case', list(CASES))
def test_family_trains_with_finite_distill_losses(case, tiny_coco80,
                                                  tmp_path):
    config, prefix, levels = CASES[case]
    config = osp.join(CONFIGS, config)
    teacher_path = Config.fromfile(config).model.teacher.cfg_path
    teacher = get_model(teacher_path, pretrained=False)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, teacher_ckpt)
    work_dir = str(tmp_path / 'work')
    cfg = tiny_cfg(config, tiny_coco80, work_dir, epochs=1, classes=None,
                   options={'model.teacher_ckpt': teacher_ckpt})
    runner = Runner.from_cfg(cfg)
    model = runner.model
    # No ImageNet download here (ResNet students use torchvision:// init).
    for module in model.modules():
        init = getattr(module, 'init_cfg', None)
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            module.init_cfg = None
    params = {
        k: v.detach().clone()
        for k, v in model.distiller.named_parameters()
    }
    assert params, 'no adapter parameters'
    runner.train()
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 2  # 4 images, batch 2
    for level in levels:
        values = [r[f'distill.{prefix}_{level}'] for r in rows]
        assert all(math.isfinite(v) and v >= 0 for v in values), values
    assert any(r[f'distill.{prefix}_{levels[0]}'] > 0 for r in rows) or \
        any(r[f'distill.{prefix}_{levels[1]}'] > 0 for r in rows)
    assert not model.teacher.training
    changed = [
        k for k, v in model.distiller.named_parameters()
        if not torch.equal(v.detach(), params[k])
    ]
    assert changed, 'no adapter was trained'
