# Fine-grained feature imitation: RetinaNet R50-FPN student, R101-FPN
# teacher (mmdet), COCO, mmdet's 1x schedule.
#   python tools/train.py configs/fgd_retinanet_r50_from_r101.py
# All five FPN levels (P3-P7, 256 channels); anchors (9 per cell, centred at
# cell corners) from the student's prior generator.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
        pretrained=False),
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth',  # noqa: E501
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.fpn_convs.{i}' for i in range(5)],
        level_names=['p3', 'p4', 'p5', 'p6', 'p7'],
        student_channels=[256] * 5,
        teacher_channels=[256] * 5,
    ))
