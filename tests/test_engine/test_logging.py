"""Per-level imitation losses reach mmengine's visualisation backends:
the local one always (test_train_smoke.py reads its scalars.json), and
TensorBoard when it is installed (not a requirement of this project)."""
import glob
import os.path as osp

import pytest
from mmengine.runner import Runner

from ..conftest import CONFIGS
from ..utils import save_demo_teacher, tiny_cfg


def test_imitation_losses_in_tensorboard(tiny_coco, tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    teacher_ckpt = save_demo_teacher(tmp_path / 'teacher.pth')
    work_dir = str(tmp_path / 'work')
    cfg = tiny_cfg(
        osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py'), tiny_coco,
        work_dir, options={'model.teacher_ckpt': teacher_ckpt})
    cfg.visualizer.vis_backends = [
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend')
    ]
    Runner.from_cfg(cfg).train()
    events = glob.glob(osp.join(work_dir, '**', 'events.out.tfevents.*'),
                       recursive=True)
    assert events
    acc = EventAccumulator(osp.dirname(events[0]))
    acc.Reload()
    tags = acc.Tags()['scalars']
    for level in ('p3', 'p4', 'p5'):
        assert f'distill.loss_imitation_{level}' in tags, tags
    assert 'imitation_grad_scale' in tags
