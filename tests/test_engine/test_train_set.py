"""An empty train set stops tools/train.py before training with a clear
error (mmengine's own: "need at least one array to concatenate")."""
import json
import os.path as osp

import pytest
from mmengine.runner import Runner

from fgd_mmrazor.engine.train_set import EmptyTrainSetError, check_train_set

from ..conftest import CONFIGS, make_tiny_coco
from ..utils import save_demo_teacher, tiny_cfg


def _coco_with_category(root, category_id):
    """A tiny set whose boxes all use ``category_id`` (the file's only
    category is 1, 'Tree')."""
    ann_file = make_tiny_coco(root, num_images=3)
    with open(ann_file) as f:
        ann = json.load(f)
    for a in ann['annotations']:
        a['category_id'] = category_id
    with open(ann_file, 'w') as f:
        json.dump(ann, f)
    return root


def _runner(tmp_path, data, filter_empty_gt):
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    cfg = tiny_cfg(
        osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py'), data,
        str(tmp_path / 'work'), options={'model.teacher_ckpt': teacher})
    cfg.train_dataloader.dataset.filter_cfg = dict(
        filter_empty_gt=filter_empty_gt)
    return Runner.from_cfg(cfg)


def test_boxes_of_an_unknown_category_leave_an_empty_train_set(tmp_path):
    data = _coco_with_category(str(tmp_path / 'data'), category_id=7)
    runner = _runner(tmp_path, data, filter_empty_gt=True)
    with pytest.raises(EmptyTrainSetError) as err:
        check_train_set(runner)
    text = str(err.value)
    assert 'loads 3 images' in text and 'leaves none' in text
    assert "category ids" in text and "('Tree',)" in text
    assert 'annotations.json' in text


def test_a_train_set_without_images(tmp_path):
    data = str(tmp_path / 'data')
    make_tiny_coco(data, num_images=2)
    with open(osp.join(data, 'annotations.json'), 'w') as f:
        json.dump(dict(images=[], annotations=[],
                       categories=[dict(id=1, name='Tree')]), f)
    runner = _runner(tmp_path, data, filter_empty_gt=False)
    with pytest.raises(EmptyTrainSetError, match='loads no image'):
        check_train_set(runner)


def test_a_good_train_set_passes_and_the_loop_is_reused(tmp_path):
    data = _coco_with_category(str(tmp_path / 'data'), category_id=1)
    runner = _runner(tmp_path, data, filter_empty_gt=True)
    check_train_set(runner)
    loop = runner.train_loop
    assert len(loop.dataloader.dataset) == 3
    assert runner.build_train_loop(loop) is loop
