# Fine-grained feature imitation, the paper's two-stage setting: Faster
# R-CNN R50-FPN student, R101-FPN teacher (mmdet), COCO, mmdet's 1x schedule.
#   python tools/train.py configs/fgd_faster_rcnn_r50_from_r101.py
# The FPN levels P2-P5 (fpn_convs.0-3; P6 is a max-pool, not a module) are
# imitated where the RPN's anchors (levels 0-3 of its prior generator)
# overlap the boxes.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
        pretrained=False),
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_1x_coco/faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth',  # noqa: E501
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.fpn_convs.{i}' for i in range(4)],
        level_names=['p2', 'p3', 'p4', 'p5'],
        student_channels=[256] * 4,
        teacher_channels=[256] * 4,
        mask=dict(type='ImitationMask', head='rpn_head')))
