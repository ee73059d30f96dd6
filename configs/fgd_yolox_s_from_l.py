# Fine-grained feature imitation: YOLOX-s student, YOLOX-l teacher (mmdet),
# COCO, mmdet's 300-epoch schedule (inherited with its hooks).
#   python tools/train.py configs/fgd_yolox_s_from_l.py
# YOLOX is anchor-free: the mask uses the documented anchor templates
# (side 4 x stride, ratios 1:2, 1:1, 2:1) at the head's points.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmdet::yolox/yolox_l_8xb8-300e_coco.py', pretrained=False),
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_l_8x8_300e_coco/yolox_l_8x8_300e_coco_20211126_140236-d3bd2b23.pth',  # noqa: E501
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.out_convs.{i}' for i in range(3)],
        level_names=['p3', 'p4', 'p5'],
        student_channels=[128, 128, 128],
        teacher_channels=[256, 256, 256]))
