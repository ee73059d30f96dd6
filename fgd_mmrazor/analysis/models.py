"""Building a config's models for analysis (no training loop), once for
every tool: the distillation algorithm without a trained teacher, the
plain detector, or the algorithm with its training loader.

The tools that print masks, gradients, probes and benchmarks
(``tools/visualize_masks.py``, ``analyze_masks.py``,
``diagnose_gradients.py``, ``check_teacher.py``, ``benchmark.py``) all
start here.
"""
import copy
from typing import Optional, Union

import torch
from mmengine.config import Config

from ..engine.cli_config import is_distill_cfg, load_cli_cfg, prepare_cfg
from ..utils import safe_load

__all__ = [
    'load_config', 'build_algorithm', 'build_detector',
    'build_distill_runner_parts', 'detection_loss', 'imitation_loss'
]


def load_config(config: Union[str, Config]) -> Config:
    """A config from its path (a loaded ``Config`` is copied)."""
    if isinstance(config, Config):
        return copy.deepcopy(config)
    return Config.fromfile(config)


def build_algorithm(config: Union[str, Config],
                    teacher_ckpt: Optional[str] = None,
                    device: str = 'cpu'):
    """The ``FGDDistill`` algorithm of a distillation config, in train
    mode, with the teacher of ``teacher_ckpt`` or, without one, an
    untrained teacher (``teacher_ckpt_required=False``): enough for masks,
    shapes and timings."""
    import fgd_mmrazor  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmrazor.registry import MODELS
    cfg = load_config(config)
    if not is_distill_cfg(cfg):
        raise ValueError('not a distillation config (its model is not '
                         'FGDDistill)')
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.teacher_ckpt_required = False
    init_default_scope(cfg.get('default_scope', 'mmyolo'))
    return MODELS.build(cfg.model).to(device).train()


def build_detector(config: Union[str, Config], device: str = 'cpu'):
    """The plain detector of a detector config, in its default scope."""
    import fgd_mmrazor  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmyolo.registry import MODELS
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmyolo'))
    return MODELS.build(cfg.model).to(device)


def build_distill_runner_parts(config: str,
                               teacher_ckpt: str,
                               student_ckpt: Optional[str] = None,
                               seed: int = 0,
                               work_dir: Optional[str] = None,
                               cfg_options: Optional[dict] = None):
    """The algorithm (student, teacher, adapters) and the training loader
    of a distillation config, as the runner builds them, without a
    training loop.

    ``student_ckpt`` is a plain student checkpoint (loaded into the
    student) or a distillation checkpoint (student and adapters).
    ``cfg_options`` are merged into the config first, as
    ``tools/train.py`` merges ``--cfg-options`` (:func:`load_cli_cfg`).

    Returns:
        tuple: ``(cfg, model, loader, loaded)``; ``loaded`` is None without
        ``student_ckpt``, else ``dict(into='student' | 'algorithm',
        missing_keys=N)``.
    """
    import fgd_mmrazor  # noqa: F401
    from mmengine.runner import Runner

    from ..engine.distill_guard_hook import guard_teacher
    cfg = load_cli_cfg(config, cfg_options,
                       work_dir=work_dir or 'work_dirs/check_teacher')
    if not is_distill_cfg(cfg):
        raise ValueError(f'{config} is not a distillation config (its '
                         'model is not FGDDistill)')
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.randomness = dict(seed=seed)
    cfg.load_from = None
    cfg.resume = False
    prepare_cfg(cfg)
    model = Runner.from_cfg(copy.deepcopy(cfg)).model
    # No training loop here (the analyses' own optimizers hold the
    # adapters only): check the frozen teacher as DistillGuardHook does.
    guard_teacher(model.teacher)
    model.guarded = True
    loader = Runner.build_dataloader(cfg.train_dataloader)
    loaded = None
    if student_ckpt:
        state = safe_load(student_ckpt)['state_dict']
        distill = any(k.startswith('architecture.') for k in state)
        target = model if distill else model.architecture
        missing, _ = target.load_state_dict(state, strict=False)
        loaded = dict(into='algorithm' if distill else 'student',
                      missing_keys=len(missing))
    return cfg, model, loader, loaded


def imitation_loss(losses: dict) -> torch.Tensor:
    """The sum of the (weighted) imitation losses of ``FGDDistill``'s
    loss dict (``distill.*``)."""
    return sum(v for k, v in losses.items() if k.startswith('distill.'))


def detection_loss(losses: dict) -> torch.Tensor:
    """The sum of the student's detection losses (``student.loss_*``)."""
    return sum(v for k, v in losses.items()
               if k.startswith('student.') and 'loss' in k)
