"""tools/dist_train.sh: 2 processes (torchrun, gloo on CPU) train the
distillation config a few iterations."""
import glob
import json
import math
import os
import os.path as osp
import subprocess

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fgd_mmrazor.utils import safe_load
from ..conftest import CONFIGS, REPO


def test_two_process_ddp_distillation(tiny_coco, tmp_path):
    from mmyolo.registry import MODELS
    init_default_scope('mmyolo')
    teacher = MODELS.build(
        Config.fromfile(osp.join(CONFIGS, 'demo', 'yolov5_s_trees.py')).model)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, teacher_ckpt)
    work_dir = str(tmp_path / 'work')
    ann = osp.join(tiny_coco, 'annotations.json')
    options = [
        f'model.teacher_ckpt={teacher_ckpt}', 'train_cfg.max_epochs=2',
        'train_cfg.val_interval=10', 'param_scheduler.1.end=2',
        'param_scheduler.1.T_max=2', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_dataloader.dataset.data_root={tiny_coco}/',
        f'train_dataloader.dataset.ann_file={ann}',
        'train_dataloader.dataset.data_prefix.img=images/',
        # the val set too: the evaluator reads its file when it is built
        f'val_dataloader.dataset.data_root={tiny_coco}/',
        f'val_dataloader.dataset.ann_file={ann}',
        'val_dataloader.dataset.data_prefix.img=images/',
        f'val_evaluator.ann_file={ann}'
    ]
    env = dict(os.environ, PORT='29731', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'),
         osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py'), '2',
         '--work-dir', work_dir, '--cfg-options', *options],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    rows = [json.loads(line) for line in open(files[0]) if 'loss' in line]
    assert len(rows) == 2  # 4 images / (2 processes x 2) = 1 iteration/epoch
    for r in rows:
        for level in ('p3', 'p4', 'p5'):
            assert math.isfinite(r[f'distill.loss_imitation_{level}'])
    ckpt = safe_load(osp.join(work_dir, 'epoch_2.pth'))
    assert 'distiller.connectors.adapt_p3.conv_module.conv.weight' in \
        ckpt['state_dict']
