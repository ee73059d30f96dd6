# Fine-grained feature imitation: RTMDet-tiny student, RTMDet-s teacher
# (mmdet), COCO, mmdet's 300-epoch schedule (inherited with its hooks).
#   python tools/train.py configs/fgd_rtmdet_tiny_from_s.py
# RTMDet is anchor-free: the mask uses the documented anchor templates.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
        pretrained=False),
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_s_8xb32-300e_coco/rtmdet_s_8xb32-300e_coco_20220905_161602-387a891e.pth',  # noqa: E501
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.out_convs.{i}' for i in range(3)],
        level_names=['p3', 'p4', 'p5'],
        student_channels=[96, 96, 96],
        teacher_channels=[128, 128, 128]))
