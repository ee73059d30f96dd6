"""Anchors read from a built detector reproduce the head's own priors;
anchor-free heads get templates centred on the head's own points."""
import pytest
import torch
from mmengine.hub import get_model

from fgd_mmrazor.models.utils import anchors_from_model
from fgd_mmrazor.models.utils.anchors import anchor_templates

ANCHOR_BASED = {
    'yolov5': 'mmyolo::yolov5/yolov5_n-v61_syncbn_fast_8xb16-300e_coco.py',
    'yolov3': 'mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py',
    'retinanet': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'faster_rcnn_rpn': 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
}
ANCHOR_FREE = {
    'yolox': 'mmdet::yolox/yolox_s_8xb8-300e_coco.py',
    'rtmdet': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'yolov8': 'mmyolo::yolov8/yolov8_s_syncbn_fast_8xb16-500e_coco.py',
}


def _priors(anchors, stride, offset, h, w):
    """(h * w * A, 4) xyxy boxes, mmdet's order (cells row-major, then
    anchors), from (w, h) shapes, a stride and a centre offset."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    cx = ((xs.reshape(-1).float() + offset) * stride[0])[:, None]
    cy = ((ys.reshape(-1).float() + offset) * stride[1])[:, None]
    aw, ah = anchors[None, :, 0], anchors[None, :, 1]
    return torch.stack([cx - aw / 2, cy - ah / 2, cx + aw / 2, cy + ah / 2],
                       dim=-1).reshape(-1, 4)


def _generator(model):
    head = getattr(model, 'bbox_head', None) or model.rpn_head
    return head.prior_generator


@pytest.mark.parametrize('name', list(ANCHOR_BASED))
def test_anchors_reproduce_the_prior_generator(name):
    model = get_model(ANCHOR_BASED[name], pretrained=False)
    anchors, strides, offset = anchors_from_model(model)
    generator = _generator(model)
    sizes = [(5, 7)] * generator.num_levels  # rectangular maps
    own = generator.grid_priors(sizes, device='cpu')
    assert len(anchors) == len(own) == generator.num_levels
    for level, (h, w) in enumerate(sizes):
        mine = _priors(anchors[level], strides[level], offset, h, w)
        torch.testing.assert_close(mine, own[level].float())
    # levels= picks and orders levels
    picked, picked_strides, _ = anchors_from_model(model, levels=[1, 0])
    assert torch.equal(picked[0], anchors[1])
    assert picked_strides == [strides[1], strides[0]]


@pytest.mark.parametrize('name', list(ANCHOR_FREE))
def test_anchor_free_heads_get_templates_on_their_points(name):
    model = get_model(ANCHOR_FREE[name], pretrained=False)
    generator = _generator(model)
    anchors, strides, offset = anchors_from_model(model)
    assert strides == [(8., 8.), (16., 16.), (32., 32.)]
    # The documented default: side 4 x stride, ratios 1:2, 1:1, 2:1.
    for level, stride in enumerate((8., 16., 32.)):
        side = 4 * stride
        torch.testing.assert_close(
            anchors[level],
            torch.tensor([[side * 2**0.5, side / 2**0.5], [side, side],
                          [side / 2**0.5, side * 2**0.5]]))
    own = generator.grid_priors([(5, 7)] * 3, device='cpu')
    for level in range(3):
        centres = _priors(anchors[level][:1], strides[level], offset, 5, 7)
        centres = (centres[:, :2] + centres[:, 2:]) / 2
        torch.testing.assert_close(centres, own[level][:, :2].float())
    # a user override
    custom, _, _ = anchors_from_model(
        model, templates=dict(scales=(2.0, ), ratios=(1.0, )))
    assert custom[0].tolist() == [[16.0, 16.0]]


def test_anchor_templates_validate():
    with pytest.raises(ValueError, match='positive'):
        anchor_templates([8], scales=(0, ))
    assert anchor_templates([(8, 16)], scales=(1.0, ),
                            ratios=(1.0, ))[0].tolist() == [[12.0, 12.0]]


def test_student_heads_reach_the_students_own_hooks():
    """mmdet's YOLOXModeSwitchHook sets model.bbox_head.use_l1 on the
    model it trains: with FGDDistill that is the student's head."""
    from types import SimpleNamespace

    from mmdet.engine.hooks import YOLOXModeSwitchHook
    from mmengine.config import Config
    from mmrazor.registry import MODELS

    from ..conftest import CONFIGS
    cfg = Config.fromfile(f'{CONFIGS}/fgd_yolox_s_from_l.py')
    cfg.model.teacher_ckpt = None
    cfg.model.teacher_ckpt_required = False
    algo = MODELS.build(cfg.model)
    assert algo.bbox_head is algo.architecture.bbox_head
    assert not algo.bbox_head.use_l1
    loader = SimpleNamespace(dataset=SimpleNamespace(
        update_skip_type_keys=lambda keys: None), persistent_workers=False)
    runner = SimpleNamespace(
        epoch=9, model=algo, max_epochs=10, train_dataloader=loader,
        logger=SimpleNamespace(info=print))
    YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(runner)
    assert algo.architecture.bbox_head.use_l1
