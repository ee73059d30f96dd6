"""Checks of a distillation run that every launcher runs.

mmengine's ``MMDistributedDataParallel.train_step`` calls the data
preprocessor and the model's forward itself, so checks placed in the
algorithm's ``train_step`` run only in single-process training. This hook
runs them in every run, one process or many:

* before training: the optimizer holds every trainable parameter of the
  distiller (the adapters), or the run stops with an error (they would
  never be trained);
* before training and before every iteration: the teacher is in eval mode
  and none of its parameters requires a gradient; otherwise it is
  corrected, with a warning.

``tools/train.py`` adds the hook to every ``FGDDistill`` config that does
not name it (``fgd_mmrazor.engine.cli_config.prepare_cfg``); a script that
builds its own ``Runner`` adds it to ``custom_hooks``::

    custom_hooks = [dict(type='DistillGuardHook')]
"""
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

__all__ = ['DistillGuardHook', 'check_optimizer', 'guard_teacher']


def check_optimizer(algorithm, optim_wrapper) -> None:
    """Adapters missing from the optimizer would never be trained.

    Raises:
        RuntimeError: A trainable distiller parameter is not optimized.
    """
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    if optimizer is None:
        return  # e.g. an OptimWrapperDict: nothing generic to check
    in_optim = {
        id(p)
        for group in optimizer.param_groups for p in group['params']
    }
    missing = [
        name for name, p in algorithm.distiller.named_parameters()
        if p.requires_grad and id(p) not in in_optim
    ]
    if missing:
        raise RuntimeError(
            'FGDDistill: the optimizer does not hold the adapter '
            f'parameters {missing[:4]}; they would never be trained. '
            'Build the optimizer from the whole algorithm (the '
            'default), not from model.student or model.architecture.')


def guard_teacher(teacher) -> None:
    """A teacher in train mode or with gradients is corrected, loudly."""
    logger = MMLogger.get_current_instance()
    if any(m.training for m in teacher.modules()):
        logger.warning('FGDDistill: the teacher was in train mode '
                       '(BN statistics would drift); set it to eval.')
        teacher.eval()
    grads = [p for p in teacher.parameters() if p.requires_grad]
    if grads:
        logger.warning(f'FGDDistill: {len(grads)} teacher parameters '
                       'required gradients; froze them.')
        for p in grads:
            p.requires_grad_(False)


@HOOKS.register_module()
class DistillGuardHook(Hook):
    """Check the optimizer once and the frozen teacher every iteration."""

    priority = 'VERY_HIGH'

    @staticmethod
    def _algorithm(runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if getattr(model, 'distiller', None) is None or \
                getattr(model, 'teacher', None) is None:
            raise TypeError('DistillGuardHook needs a distillation '
                            'algorithm with a teacher and a distiller')
        return model

    def before_train(self, runner) -> None:
        model = self._algorithm(runner)
        check_optimizer(model, runner.optim_wrapper)
        guard_teacher(model.teacher)
        model.guarded = True

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        guard_teacher(self._algorithm(runner).teacher)
