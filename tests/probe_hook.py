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
  has run and its hooks (checkpointing included) are done.
"""
import json
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FGDTestProbeHook(Hook):
    # After CheckpointHook (VERY_LOW): a kill comes after the save.
    priority = 'LOWEST'

    def __init__(self, kill_at_iter: int = 0) -> None:
        self.kill_at_iter = kill_at_iter

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
        torch.save(
            dict(distiller=self._distiller_state(runner),
                 optimizer_steps=steps),
            osp.join(self._dir(runner), f'before_train_rank{get_rank()}.pth'))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        row = dict(iter=runner.iter + 1, lr=runner.optim_wrapper.get_lr()
                   ['lr'][0])
        row.update({k: float(v) for k, v in (outputs or {}).items()})
        name = osp.join(self._dir(runner), f'rank{get_rank()}.jsonl')
        with open(name, 'a') as f:
            f.write(json.dumps(row) + '\n')
        if self.kill_at_iter and runner.iter + 1 == self.kill_at_iter:
            os.kill(os.getpid(), signal.SIGKILL)

    def after_train(self, runner) -> None:
        torch.save(
            self._distiller_state(runner),
            osp.join(self._dir(runner), f'distiller_rank{get_rank()}.pth'))
