# Demo distillation of the second family: RTMDet-tiny imitates the demo
# RTMDet-s teacher on its three neck outputs (anchor-free: the documented
# anchor templates), same data and schedule as ./rtmdet_tiny_trees.py and
# the same imitation settings as ./fgd_yolov5n_from_s_trees.py.
#   python tools/train.py configs/demo/fgd_rtmdet_tiny_from_s_trees.py \
#       --cfg-options model.teacher_ckpt=work_dirs/demo_rtmdet/teacher.pth
_base_ = './rtmdet_tiny_trees.py'
custom_imports = dict(imports=['fgd_mmrazor'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FGDDistill',
    architecture=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/rtmdet_s_trees.py'),
    teacher_ckpt=None,
    distiller=dict(
        type='FGDDistiller',
        student_layers=[f'neck.out_convs.{i}' for i in range(3)],
        level_names=['p3', 'p4', 'p5'],
        student_channels=[96, 96, 96],
        teacher_channels=[128, 128, 128],
        loss=dict(type='ImitationMaskLoss', loss_weight=0.001)))
custom_hooks = _base_.custom_hooks + [
    dict(type='AdapterWarmupHook', adapter_only_iters=70, ramp_iters=70)
]
