# Fine-grained feature imitation: YOLOv8-s student, YOLOv8-l teacher
# (mmyolo), COCO, mmyolo's 500-epoch schedule (inherited with its hooks).
#   python tools/train.py configs/fgd_yolov8_s_from_l.py
# YOLOv8 is anchor-free: the mask uses the documented anchor templates.
_base_ = 'mmyolo::yolov8/yolov8_s_syncbn_fast_8xb16-500e_coco.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmyolo::yolov8/yolov8_l_syncbn_fast_8xb16-500e_coco.py',
        pretrained=False),
    teacher_ckpt='https://download.openmmlab.com/mmyolo/v0/yolov8/yolov8_l_syncbn_fast_8xb16-500e_coco/yolov8_l_syncbn_fast_8xb16-500e_coco_20230217_182526-189611b6.pth',  # noqa: E501
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.out_layers.{i}' for i in range(3)],
        level_names=['p3', 'p4', 'p5'],
        student_channels=[128, 256, 512],
        teacher_channels=[256, 512, 512]))
