# The imitation's share of the schedule: the adapter warm-up in 35 + 35
# iterations instead of 70 + 70 (full strength for 140 of 210 iterations,
# not 70).
_base_ = '../fgd_yolov5n_from_mnv2_trees.py'

custom_hooks = [
    hook if hook['type'] != 'AdapterWarmupHook' else dict(
        hook, adapter_only_iters=35, ramp_iters=35)
    for hook in _base_.custom_hooks
]
