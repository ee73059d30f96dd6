"""Warm the adapters up before their imitation gradient reaches the student.

At the start of training the adaptation convs are random, so the gradient
that the imitation loss sends into the student (through the adapter's
transpose) points in a random direction, and it is large: measured on the
demo pair, 2-15x the detection gradient of every backbone and neck block at
``loss_weight`` 0.001, nearly orthogonal to it (docs/results.md). Once the
adapters have been fitted it is 0.1-0.3x the detection gradient. The hook
lets the adapters learn alone first, then phases the student's imitation
gradient in:

* iterations ``[0, adapter_only_iters)``: ``student_grad_scale = 0`` (the
  student trains on detection only, the adapters on imitation);
* the next ``ramp_iters``: the scale rises linearly to 1;
* afterwards: 1 (the plain method);
* optionally, the last ``fade_out_iters`` of training: the scale falls
  linearly to 0 (the student ends on the detection loss alone, the
  imitation having shaped its features before).

The imitation loss is computed and logged unchanged throughout; only the
gradient into the student is scaled (``FGDDistiller.student_grad_scale``).
The scale is a function of the iteration, so a resumed run continues it.

Example::

    custom_hooks = [
        dict(type='EMAHook', ...),
        dict(type='AdapterWarmupHook', adapter_only_iters=70,
             ramp_iters=70),
    ]
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

__all__ = ['AdapterWarmupHook', 'student_grad_scale_at']


def student_grad_scale_at(it: int,
                          adapter_only_iters: int,
                          ramp_iters: int,
                          fade_out_iters: int = 0,
                          max_iters: int = 0) -> float:
    """The scale at 0-based iteration ``it`` of ``max_iters``."""
    if it < adapter_only_iters:
        return 0.0
    scale = 1.0 if ramp_iters <= 0 else min(
        1.0, (it - adapter_only_iters + 1) / ramp_iters)
    if fade_out_iters > 0:
        scale = min(scale, max(0.0, (max_iters - 1 - it) / fade_out_iters))
    return scale


@HOOKS.register_module()
class AdapterWarmupHook(Hook):
    """Set ``student_grad_scale`` of the distiller every iteration.

    Args:
        adapter_only_iters (int): Iterations in which only the adapters
            learn from the imitation loss. Defaults to 0.
        ramp_iters (int): Iterations of the linear ramp that follows.
            Defaults to 0.
        fade_out_iters (int): Iterations at the end of training over which
            the scale falls linearly to 0 (reached at the last iteration).
            Defaults to 0 (no fade-out).
        delay_iters (int): Iterations at the start in which the imitation
            losses are switched off altogether (``FGDDistiller.
            imitation_scale = 0``: neither the adapters nor the student
            learn from them), the schedule of the authors' code, which
            pairs it with adapters initialised near zero. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self,
                 adapter_only_iters: int = 0,
                 ramp_iters: int = 0,
                 fade_out_iters: int = 0,
                 delay_iters: int = 0) -> None:
        if min(adapter_only_iters, ramp_iters, fade_out_iters,
               delay_iters) < 0:
            raise ValueError('AdapterWarmupHook: adapter_only_iters, '
                             'ramp_iters, fade_out_iters and delay_iters '
                             f'must be >= 0, got {adapter_only_iters}, '
                             f'{ramp_iters}, {fade_out_iters}, '
                             f'{delay_iters}')
        self.delay_iters = delay_iters
        self.adapter_only_iters = adapter_only_iters
        self.ramp_iters = ramp_iters
        self.fade_out_iters = fade_out_iters

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        distiller = getattr(model, 'distiller', None)
        if distiller is None or not hasattr(distiller,
                                            'student_grad_scale'):
            raise TypeError('AdapterWarmupHook needs an algorithm whose '
                            'distiller is an FGDDistiller')
        scale = student_grad_scale_at(runner.iter, self.adapter_only_iters,
                                      self.ramp_iters, self.fade_out_iters,
                                      runner.max_iters)
        distiller.student_grad_scale = scale
        runner.message_hub.update_scalar('train/imitation_grad_scale', scale)
        if self.delay_iters:
            distiller.imitation_scale = float(
                runner.iter >= self.delay_iters)
