"""A test-only hook that records what each rank sees, and can crash a run.

Used by the DDP and resume tests through a config that adds
``custom_imports=['tests.probe_hook']`` and
``dict(type='FGDTestProbeHook', ...)`` to ``custom_hooks``:

* every training iteration appends ``{"iter", "lr", losses...}`` of this
  rank to ``{work_dir}/probe/rank{R}.jsonl`` (the logger shows rank 0 only);
* before training (after ``--resume`` has loaded), the distiller's state and
  the optimizer's per-parameter step counts go to
  ``{work_dir}/probe/before_train_rank{R}.pth``;
* after training, the distiller's parameters (the adapters) of this rank go
  to ``{work_dir}/probe/distiller_rank{R}.pth``;
* ``kill_at_iter=N`` sends SIGKILL to the process after iteration N (1-based)
  has run and its hooks (checkpointing included) are done;
* ``record_grads=True``: the adapters' gradients of this rank's backward
  (before DDP averages them) go to ``{work_dir}/probe/grads_rank{R}.pth``,
  one dict per iteration;
* ``tamper_teacher_after_iter=N``: after iteration N the teacher is put in
  train mode with gradients (``DistillGuardHook`` must undo it); every row
  records whether the teacher was in eval mode and frozen at the start of
  its iteration, after the guard ran.

``StudentOnlyOptimWrapperConstructor`` builds an optimizer over the student
only (a misconfiguration ``DistillGuardHook`` must refuse).
"""
import json
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import HOOKS, OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StudentOnlyOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Builds the optimizer from ``model.architecture`` only."""

    def __call__(self, model):
        model = model.module if is_model_wrapper(model) else model
        return super().__call__(model.architecture)


def _algorithm(runner):
    return runner.model.module if is_model_wrapper(
        runner.model) else runner.model


@HOOKS.register_module()
class FGDTestProbeHook(Hook):
    # After CheckpointHook (VERY_LOW): a kill comes after the save.
    priority = 'LOWEST'

    def __init__(self, kill_at_iter: int = 0, record_grads: bool = False,
                 tamper_teacher_after_iter: int = 0) -> None:
        self.kill_at_iter = kill_at_iter
        self.record_grads = record_grads
        self.tamper_teacher_after_iter = tamper_teacher_after_iter
        self._grads = {}
        self._grad_rows = []
        self._teacher_ok = None

    def _dir(self, runner) -> str:
        path = osp.join(runner.work_dir, 'probe')
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def _distiller_state(runner) -> dict:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        return {k: v.detach().clone()
                for k, v in model.distiller.state_dict().items()}

    def before_train(self, runner) -> None:
        optimizer = runner.optim_wrapper.optimizer
        steps = [float(s['step']) for s in optimizer.state_dict()
                 ['state'].values()]
        teacher = _algorithm(runner).teacher
        torch.save(
            dict(distiller=self._distiller_state(runner),
                 optimizer_steps=steps,
                 teacher={k: v.detach().clone()
                          for k, v in teacher.state_dict().items()}),
            osp.join(self._dir(runner), f'before_train_rank{get_rank()}.pth'))
        if self.record_grads:
            for name, p in _algorithm(runner).distiller.named_parameters():
                if 'connectors' in name:
                    p.register_hook(lambda g, n=name: self._grads.__setitem__(
                        n, g.detach().clone()))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        teacher = _algorithm(runner).teacher
        self._teacher_ok = not any(m.training for m in teacher.modules()) \
            and not any(p.requires_grad for p in teacher.parameters())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        row = dict(iter=runner.iter + 1, lr=runner.optim_wrapper.get_lr()
                   ['lr'][0], teacher_frozen=self._teacher_ok)
        row.update({k: float(v) for k, v in (outputs or {}).items()})
        if self.record_grads:
            self._grad_rows.append(dict(self._grads))
            self._grads.clear()
            torch.save(self._grad_rows,
                       osp.join(self._dir(runner),
                                f'grads_rank{get_rank()}.pth'))
        if runner.iter + 1 == self.tamper_teacher_after_iter:
            teacher = _algorithm(runner).teacher
            teacher.train()
            teacher.requires_grad_(True)
        name = osp.join(self._dir(runner), f'rank{get_rank()}.jsonl')
        with open(name, 'a') as f:
            f.write(json.dumps(row) + '\n')
        if self.kill_at_iter and runner.iter + 1 == self.kill_at_iter:
            os.kill(os.getpid(), signal.SIGKILL)

    def after_train(self, runner) -> None:
        torch.save(
            self._distiller_state(runner),
            osp.join(self._dir(runner), f'distiller_rank{get_rank()}.pth'))
