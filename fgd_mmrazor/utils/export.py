"""Export the student of a distillation checkpoint as a plain detector
checkpoint.

MMRazor saves the whole algorithm: ``architecture.*`` (the student),
``teacher.*`` and ``distiller.*`` (adapters). The student's own config
loads only the ``architecture.*`` weights with the prefix removed. With
mmengine's ``EMAHook`` the checkpoint's ``state_dict`` already holds the
averaged weights (the ones mmyolo evaluates), which are exported.
"""
from typing import Optional

import torch

from .checkpoint import safe_load

__all__ = ['export_student', 'student_state_dict']

PREFIX = 'architecture.'


def student_state_dict(state_dict: dict) -> dict:
    """The student's weights of an algorithm ``state_dict``, unprefixed.

    A state dict without ``architecture.`` keys (a plain detector
    checkpoint) is returned as it is.
    """
    keys = [k for k in state_dict if k.startswith(PREFIX)]
    if not keys:
        return dict(state_dict)
    return {k[len(PREFIX):]: state_dict[k] for k in keys}


def export_student(src: str, dst: str, meta: Optional[dict] = None) -> dict:
    """Write ``dst`` with the student's ``state_dict`` of ``src``.

    Optimizer, message hub, teacher and adapters are left out; ``meta``
    keeps the source's epoch, iteration and dataset meta.

    Returns:
        dict: The exported state dict.
    """
    ckpt = safe_load(src)
    state = ckpt.get('state_dict', ckpt)
    student = student_state_dict(state)
    src_meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    out_meta = {
        k: src_meta[k]
        for k in ('epoch', 'iter', 'dataset_meta', 'mmengine_version')
        if k in src_meta
    }
    out_meta['exported_from'] = src
    out_meta.update(meta or {})
    torch.save({'state_dict': student, 'meta': out_meta}, dst)
    return student
