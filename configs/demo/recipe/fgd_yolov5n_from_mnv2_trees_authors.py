# The authors' adapters and schedule instead of the demo's: 3x3 adapters
# initialised
# N(0, 1e-4) (near zero, so the first imitation gradient into the student is
# small) and no imitation at all for the first 70 iterations (a third of the
# default 210; the authors' code waits 400 steps of a far longer schedule),
# then the plain method at full strength.
_base_ = './fgd_yolov5n_from_mnv2_trees_3x3.py'

model = dict(distiller=dict(adapter_init_std=1e-4))

custom_hooks = _base_.custom_hooks[:-1] + [
    dict(type='AdapterWarmupHook', delay_iters=70)
]
