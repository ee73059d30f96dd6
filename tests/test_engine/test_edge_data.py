"""A training run on annotations with edge cases, batch size 1: boxes
partly and fully outside the image, zero-size boxes, images without boxes
and a batch without any box; no NaN, no crash."""
import json
import math
import os.path as osp

import torch
from mmengine.runner import Runner

from ..conftest import CONFIGS, make_tiny_coco
from ..utils import save_demo_teacher, tiny_cfg
from .test_train_smoke import read_scalars


def _edge_coco(root):
    make_tiny_coco(root, num_images=4)  # 96 x 128 (h x w) images
    ann_file = osp.join(root, 'annotations.json')
    with open(ann_file) as f:
        ann = json.load(f)
    edge = [
        (1, [-20., -10., 50., 40.]),  # partly outside (top left)
        (1, [100., 70., 60., 60.]),  # partly outside (bottom right)
        (2, [300., 200., 40., 40.]),  # fully outside
        (2, [50., 50., 0., 0.]),  # zero size
        (2, [20., 20., 30., 0.]),  # zero height
    ]
    anns = [a for a in ann['annotations'] if a['image_id'] in (1, 2)]
    for image_id, (x, y, w, h) in edge:
        anns.append(dict(id=len(anns) + 1, image_id=image_id,
                         category_id=1, bbox=[x, y, w, h], area=w * h,
                         iscrowd=0))
    # images 3 and 4 have no box: with batch size 1 and no shuffling, two
    # whole batches are empty.
    ann['annotations'] = anns
    with open(ann_file, 'w') as f:
        json.dump(ann, f)
    return root


def test_batch_of_one_on_edge_case_annotations(tmp_path):
    data = _edge_coco(str(tmp_path / 'data'))
    teacher_ckpt = save_demo_teacher(tmp_path / 'teacher.pth')
    work_dir = str(tmp_path / 'work')
    cfg = tiny_cfg(
        osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py'), data,
        work_dir, epochs=2, batch_size=1,
        options={'model.teacher_ckpt': teacher_ckpt,
                 'train_dataloader.sampler.shuffle': False})
    runner = Runner.from_cfg(cfg)
    runner.train()
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 8  # 2 epochs x 4 images, batch 1
    for r in rows:
        for k, v in r.items():
            if 'loss' in k:
                assert math.isfinite(v), (k, r)
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
