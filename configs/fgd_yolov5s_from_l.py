# Fine-grained feature imitation (Wang et al., CVPR 2019): YOLOv5-s (v6.1)
# student, YOLOv5-l teacher, COCO, mmyolo's 8xb16 300-epoch schedule.
#
#   python tools/train.py configs/fgd_yolov5s_from_l.py \
#       --cfg-options data_root=/data/coco/ model.teacher_ckpt=/path/l.pth
#
# Data pipeline, schedule and hooks are mmyolo's (inherited). The three neck
# outputs (strides 8/16/32) are imitated through a 3x3 adaptation conv each;
# the mask's anchors and strides are read from the student's prior generator
# (mmyolo's `anchors`/`strides`), so no anchor number is repeated here.
_base_ = 'mmyolo::yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py'

custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

# mmyolo's released COCO YOLOv5-l (48.8 mAP); a local path works too.
teacher_ckpt = 'https://download.openmmlab.com/mmyolo/v0/yolov5/yolov5_l-v61_syncbn_fast_8xb16-300e_coco/yolov5_l-v61_syncbn_fast_8xb16-300e_coco_20220917_031007-096ef0eb.pth'  # noqa: E501

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(
        cfg_path='mmyolo::yolov5/yolov5_l-v61_syncbn_fast_8xb16-300e_coco.py',
        pretrained=False),
    teacher_ckpt=teacher_ckpt,
    # The loss (ImitationMaskLoss, the paper's lambda 0.01), the adapter (a
    # 3x3 conv, MaskedConvConnector) and the mask (psi 0.5, each box's best
    # IoU over all levels) are FGDDistiller's defaults.
    distiller=dict(
        type='FGDDistiller',
        student_layers=[
            'neck.out_layers.0', 'neck.out_layers.1', 'neck.out_layers.2'
        ],
        level_names=['p3', 'p4', 'p5'],
        # neck widths 256/512/1024 times widen_factor 0.5 (s), 1.0 (l)
        student_channels=[128, 256, 512],
        teacher_channels=[256, 512, 1024]))

# Train the random adapters alone for the first ~epoch (925 iterations at
# 8x16 images), then phase their gradient into the student over the next
# (docs/results.md: the random adapters' early gradient harms the student).
custom_hooks = _base_.custom_hooks + [
    dict(type='AdapterWarmupHook', adapter_only_iters=1000, ramp_iters=1000)
]
