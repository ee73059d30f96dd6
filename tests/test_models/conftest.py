"""Shared by the model tests: a built YOLOv5-n and YOLOv5-n FGDDistill
configs (the teacher checkpoint fixture is in ``tests/conftest.py``)."""
import pytest
import torch
from mmengine.hub import get_model

YOLOV5_N = 'mmyolo::yolov5/yolov5_n-v61_syncbn_fast_8xb16-300e_coco.py'


@pytest.fixture(scope='module')
def yolov5():
    return get_model(YOLOV5_N, pretrained=False)


def algorithm_cfg(**kwargs):
    cfg = dict(
        _scope_='mmrazor',
        type='FGDDistill',
        architecture=dict(cfg_path=YOLOV5_N, pretrained=False),
        teacher=dict(cfg_path=YOLOV5_N, pretrained=False),
        distiller=dict(
            type='FGDDistiller',
            student_layers=['neck.out_layers.0'],
            student_channels=[64],
            teacher_channels=[64]))
    cfg.update(kwargs)
    return cfg


def three_level_cfg(teacher_ckpt):
    """YOLOv5-n imitating YOLOv5-n on the three neck outputs."""
    return algorithm_cfg(
        teacher_ckpt=teacher_ckpt,
        distiller=dict(
            type='FGDDistiller',
            student_layers=[f'neck.out_layers.{i}' for i in range(3)],
            student_channels=[64, 128, 256],
            teacher_channels=[64, 128, 256]))


#: Packed boxes ``(image, label, x1, y1, x2, y2)`` of a two-image batch of
#: 64 x 96 px (:func:`train_batch`).
TWO_IMAGE_BOXES = torch.tensor([[0., 0., 10., 8., 40., 30.],
                                [0., 0., 30., 30., 60., 60.],
                                [1., 0., 50., 20., 90., 60.]])


def three_level_algo(teacher_ckpt, seed=0, **distiller):
    """The built :func:`three_level_cfg` algorithm in train mode, its
    student and adapters drawn from ``seed``; ``distiller`` overrides
    ``FGDDistiller`` arguments."""
    from mmrazor.registry import MODELS
    cfg = three_level_cfg(teacher_ckpt[0])
    cfg['distiller'].update(distiller)
    torch.manual_seed(seed)
    return MODELS.build(cfg).train()


def train_batch(algo, boxes, shape=(64, 96), batch_size=2, seed=0):
    """A preprocessed training batch of random images with ``boxes``
    (rows ``(batch_idx, label, x1, y1, x2, y2)``)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(batch_size, 3, *shape, generator=generator) * 255
    samples = dict(bboxes_labels=boxes.clone(),
                   img_metas=[dict(batch_input_shape=shape)] * batch_size)
    return algo.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                  True)
