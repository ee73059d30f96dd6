# Demo teacher with knowledge from outside the 50 training tiles: a
# COCO-pretrained MobileNetV2 1.0 backbone (TensorFlow's
# ssd_mobilenet_v2_coco_2018_03_29, downloaded and converted by
# `python tools/prepare_pretrained.py` into
# <repo>/data/pretrained/mobilenetv2_coco.pth) with YOLOv5's PAFPN and head,
# fine-tuned on the trees with the demo teacher's recipe
# (./yolov5_s_trees.py) and the student's data preprocessor. The neck's
# outputs are projected to 128 / 256 / 512 channels: as wide as a YOLOv5-s
# neck, and wider than the YOLOv5-n student's 64 / 128 / 256. The stem and the
# first two stages (strides 2 and 4) stay frozen: chosen by the teacher's own
# val mAP (docs/results.md), and faster to fine-tune on a CPU.
_base_ = './yolov5_s_trees.py'

custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

pretrained = '{{fileDirname}}/../../data/pretrained/mobilenetv2_coco.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.MobileNetV2',
        out_indices=(2, 4, 6),  # strides 8, 16, 32: 32, 96, 320 channels
        frozen_stages=2,
        # TensorFlow's BatchNorm epsilon; mmyolo's momentum
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.03),
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        type='ProjectedYOLOv5PAFPN',
        in_channels=[32, 96, 320],
        out_channels=[128, 256, 512],
        widen_factor=1.0))
