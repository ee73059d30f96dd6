"""Anchor shapes and strides per level, read from a built detector.

The imitation mask needs, per imitated level, the anchor shapes (w, h) and
the stride. Anchor-based heads (YOLOv5, YOLOv3, RetinaNet, the RPN of
Faster R-CNN) carry them in their prior generator; reading them from the
built model means that no config repeats the anchor numbers.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = ['anchors_from_model', 'find_prior_generator']

_HEAD_NAMES = ('bbox_head', 'rpn_head')


def find_prior_generator(model: nn.Module,
                         head: Optional[str] = None):
    """The prior generator of ``model.<head>``.

    Args:
        model (nn.Module): A detector.
        head (str, optional): Attribute of the head. Defaults to the first
            of ``bbox_head`` and ``rpn_head`` that has a prior generator
            (the RPN supplies the anchors of a two-stage detector).
    """
    names = (head, ) if head else _HEAD_NAMES
    for name in names:
        module = getattr(model, name, None)
        generator = getattr(module, 'prior_generator', None)
        if generator is not None:
            return generator
    raise ValueError(
        f'{type(model).__name__} has no prior generator on '
        f'{" or ".join(names)}: set the anchors explicitly (base_anchors=) '
        'and strides=.')


def anchors_from_model(
        model: nn.Module,
        head: Optional[str] = None,
        levels: Optional[Sequence[int]] = None
) -> Tuple[List[Tensor], List[Tuple[float, float]]]:
    """Anchor (w, h) per level and strides (sx, sy) of a detector.

    Args:
        model (nn.Module): The built detector.
        head (str, optional): See :func:`find_prior_generator`.
        levels (Sequence[int], optional): Indices of the levels to return.
            Defaults to all levels.

    Returns:
        tuple: ``base_anchors`` (list of (A_l, 2) float tensors) and
        ``strides`` (list of (sx, sy)).
    """
    generator = find_prior_generator(model, head)
    base_anchors = getattr(generator, 'base_anchors', None)
    if base_anchors is None:
        raise ValueError(
            f'The prior generator {type(generator).__name__} of '
            f'{type(model).__name__} makes points, not anchors (an '
            'anchor-free head): set anchor templates per level '
            '(base_anchors=) in the mask recorder.')
    anchors = [(a[:, 2:] - a[:, :2]).detach().float().cpu()
               for a in base_anchors]
    strides = [tuple(float(s) for s in stride)
               for stride in generator.strides]
    if levels is not None:
        anchors = [anchors[i] for i in levels]
        strides = [strides[i] for i in levels]
    return anchors, strides


def as_anchor_tensors(base_anchors: Sequence) -> List[Tensor]:
    """Config anchors (lists of (w, h)) as (A, 2) float tensors."""
    return [
        torch.as_tensor(a, dtype=torch.float32).reshape(-1, 2)
        for a in base_anchors
    ]
