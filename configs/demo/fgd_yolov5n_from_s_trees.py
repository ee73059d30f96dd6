# Demo distillation: YOLOv5-n student imitates the demo YOLOv5-s teacher on
# the three neck outputs, same data and schedule as ./yolov5_n_trees.py.
#   python tools/train.py configs/demo/fgd_yolov5n_from_s_trees.py \
#       --cfg-options model.teacher_ckpt=work_dirs/demo/teacher.pth
_base_ = './yolov5_n_trees.py'

custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/yolov5_s_trees.py'),
    teacher_ckpt=None,
    distiller=dict(
        type='FGDDistiller',
        student_layers=[
            'neck.out_layers.0', 'neck.out_layers.1', 'neck.out_layers.2'
        ],
        level_names=['p3', 'p4', 'p5'],
        # neck widths 256/512/1024 times widen_factor 0.25 (n), 0.5 (s)
        student_channels=[64, 128, 256],
        teacher_channels=[128, 256, 512],
        # The recipe chosen on seeds 0-2 with the COCO-pretrained teacher
        # (docs/results.md): loss_weight 0.001 (of 0.001 / 0.01 / 0.1 / 1),
        # a 1x1 adaptation conv (the paper's 3x3 absorbed more of the
        # mismatch) and the warm-up below; the mask is the default (psi
        # 0.5, each box's best IoU over all levels).
        loss=dict(type='ImitationMaskLoss', loss_weight=0.001),
        connector=dict(type='MaskedConvConnector', kernel_size=1)))

# Train the random adapters alone for the first 5 epochs (35 iterations),
# then phase the imitation gradient into the student over the next 5: the
# imitation is at full strength for 140 of the 210 iterations (chosen on
# seeds 0-2 over 70 + 70; fgd_mmrazor/engine/adapter_warmup_hook.py,
# docs/results.md).
custom_hooks = _base_.custom_hooks + [
    dict(type='AdapterWarmupHook', adapter_only_iters=35, ramp_iters=35)
]
