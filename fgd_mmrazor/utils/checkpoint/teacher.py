"""Loading a teacher checkpoint, loudly.

The teacher's backbone and neck are what the student imitates: a
checkpoint that leaves one of their weights unloaded, or gives one no data
(meta tensors) or non-finite values, would train the student towards a
random or NaN teacher, so it is an error that names the first offending
key.
"""
from typing import Iterable

import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import nn

from .archive import safe_load

__all__ = ['load_teacher_checkpoint']


def _required_prefixes(model: nn.Module) -> Iterable[str]:
    for name in ('backbone', 'neck'):
        if getattr(model, name, None) is not None:
            yield name + '.'


def _check_values(state_dict: dict, keys: Iterable[str], path: str) -> None:
    """Meta tensors and non-finite values among the weights to be loaded."""
    for key in keys:
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            continue
        if value.is_meta:
            raise RuntimeError(
                f'teacher_ckpt {path!r}: {key!r} is a meta tensor of shape '
                f'{tuple(value.shape)}: the file holds shapes, not weights. '
                'Save the trained teacher with its data.')
        if value.is_floating_point() or value.is_complex():
            bad = (~torch.isfinite(value)).sum().item()
            if bad:
                nan = torch.isnan(value).sum().item()
                raise RuntimeError(
                    f'teacher_ckpt {path!r}: {key!r} has {bad} non-finite '
                    f'values of {value.numel()} ({nan} NaN, {bad - nan} '
                    'inf): the teacher diverged or the file is corrupt.')


def load_teacher_checkpoint(model: nn.Module, path: str) -> None:
    """Load a teacher checkpoint (a path or a URL), loudly.

    Missing and unexpected keys are logged; a checkpoint that leaves any
    backbone or neck weight of the teacher unloaded is an error (those are
    the layers the student imitates), and so is a weight to be loaded that
    is a meta tensor or holds NaN or inf.

    Raises:
        UnsafeCheckpointError: See :func:`safe_load`.
        RuntimeError: Backbone or neck weights are missing, or a weight is
            a meta tensor or non-finite.
    """
    try:
        checkpoint = safe_load(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'teacher_ckpt {path!r} does not exist') from None
    state_dict = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise RuntimeError(f'teacher_ckpt {path!r} holds no state_dict')
    state_dict = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state_dict.items()
    }
    model_state = model.state_dict()
    # A key whose shape differs is not loaded either.
    missing = sorted(
        k for k in model_state
        if k not in state_dict or tuple(getattr(state_dict[k], 'shape', (
        ))) != tuple(model_state[k].shape))
    unexpected = sorted(set(state_dict) - set(model_state))
    logger = MMLogger.get_current_instance()
    if unexpected:
        logger.warning(f'teacher_ckpt {path}: {len(unexpected)} unexpected '
                       f'keys, e.g. {unexpected[:5]}')
    if missing:
        logger.warning(f'teacher_ckpt {path}: {len(missing)} missing keys, '
                       f'e.g. {missing[:5]}')
    prefixes = tuple(_required_prefixes(model))
    vital = [k for k in missing if k.startswith(prefixes)]
    if vital:
        hint = ''
        if any(k.startswith('architecture.') for k in state_dict):
            hint = (' It looks like a distillation checkpoint: export the '
                    'student first (tools/export_student.py).')
        raise RuntimeError(
            f'teacher_ckpt {path!r} does not fit the teacher model: '
            f'{len(vital)} backbone/neck weights are missing, e.g. '
            f'{vital[:5]}.{hint} Check that model.teacher is the config '
            'the checkpoint was trained with.')
    _check_values(state_dict, sorted(set(model_state) - set(missing)), path)
    _load_checkpoint_to_model(model, {'state_dict': state_dict},
                              strict=False)
    logger.info(f'Loaded teacher checkpoint {path}')
