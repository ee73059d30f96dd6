# Fine-grained feature imitation: YOLOv3 MobileNetV2 student, YOLOv3
# Darknet-53 teacher (mmdet), COCO, the student's 300-epoch schedule.
#   python tools/train.py configs/fgd_yolov3_mobilenetv2_from_d53.py
# YOLOV3Neck's outputs are the DetectionBlocks detect1..3, strides 32, 16,
# 8 (the head's level order); the anchors come from its prior generator.
_base_ = 'mmdet::yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmdet::yolo/yolov3_d53_8xb8-ms-608-273e_coco.py',
        pretrained=False),
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/yolo/yolov3_d53_mstrain-608_273e_coco/yolov3_d53_mstrain-608_273e_coco_20210518_115020-a2c3acb8.pth',  # noqa: E501
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.detect{i}' for i in (1, 2, 3)],
        level_names=['p5', 'p4', 'p3'],
        student_channels=[96, 96, 96],
        teacher_channels=[512, 256, 128]))
