"""Anchor shapes and strides per level, read from a built detector.

The imitation mask needs, per imitated level, the anchor shapes (w, h) and
the stride. Anchor-based heads (YOLOv5, YOLOv3, RetinaNet, the RPN of
Faster R-CNN) carry them in their prior generator; reading them from the
built model means that no config repeats the anchor numbers. The anchor
centres are read too (``center_offset``: YOLO anchors sit at cell centres,
mmdet's ``AnchorGenerator`` at cell corners).

Anchor-free heads (YOLOX, RTMDet, YOLOv8) have a point generator: there the
mask uses anchor *templates* per level, scaled to the level's stride
(:func:`anchor_templates`, default: a square of side 4 x stride and the
1:2 and 2:1 boxes of the same area, centred on the points).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = [
    'anchors_from_model', 'find_prior_generator', 'anchor_templates',
    'DEFAULT_ANCHOR_TEMPLATES'
]

#: The documented default templates of anchor-free heads: side
#: ``scale * stride`` and aspect ratios h/w (mmdet's convention).
DEFAULT_ANCHOR_TEMPLATES: Dict = dict(scales=(4.0, ), ratios=(0.5, 1.0, 2.0))


def anchor_templates(strides: Sequence, scales: Sequence[float] = (4.0, ),
                     ratios: Sequence[float] = (0.5, 1.0, 2.0)
                     ) -> List[Tensor]:
    """Anchor (w, h) templates per level for an anchor-free head.

    For a level of stride s (the mean of sx and sy), scale k and ratio r
    (h / w): ``w = k s / sqrt(r)``, ``h = k s sqrt(r)`` (area (k s)^2).

    Returns:
        list[Tensor]: One (len(scales) * len(ratios), 2) tensor per level.
    """
    if not scales or not ratios or min(scales) <= 0 or min(ratios) <= 0:
        raise ValueError('anchor templates need positive scales and ratios, '
                         f'got scales={scales}, ratios={ratios}')
    out = []
    for stride in strides:
        sx, sy = (stride, stride) if isinstance(stride, (int, float)) \
            else stride
        base = (float(sx) + float(sy)) / 2
        out.append(torch.tensor(
            [[k * base / r**0.5, k * base * r**0.5] for k in scales
             for r in ratios], dtype=torch.float32))
    return out


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
    levels: Optional[Sequence[int]] = None,
    templates: Optional[Dict] = None,
) -> Tuple[List[Tensor], List[Tuple[float, float]], float]:
    """Anchor (w, h) per level, strides (sx, sy) and anchor centre offset.

    Args:
        model (nn.Module): The built detector.
        head (str, optional): See :func:`find_prior_generator`.
        levels (Sequence[int], optional): Indices of the levels to return.
            Defaults to all levels.
        templates (dict, optional): ``scales``/``ratios`` of
            :func:`anchor_templates` for a point generator (anchor-free
            head). Defaults to :data:`DEFAULT_ANCHOR_TEMPLATES`. Ignored
            when the head has anchors.

    Returns:
        tuple: ``base_anchors`` (list of (A_l, 2) float tensors),
        ``strides`` (list of (sx, sy)) and ``center_offset`` (anchors
        centred at ``(j + center_offset) * sx``).
    """
    generator = find_prior_generator(model, head)
    strides = [tuple(float(s) for s in stride)
               for stride in generator.strides]
    base_anchors = getattr(generator, 'base_anchors', None)
    if base_anchors is None:  # a point generator: anchor-free head
        offset = float(getattr(generator, 'offset', 0.5))
        anchors = anchor_templates(strides,
                                   **(templates or DEFAULT_ANCHOR_TEMPLATES))
    else:
        anchors = [(a[:, 2:] - a[:, :2]).detach().float().cpu()
                   for a in base_anchors]
        # Cell (0, 0)'s anchors are centred at offset * stride.
        offsets = {
            round(float((a[:, 0] + a[:, 2]).mean()) / 2 / s[0], 6)
            for a, s in zip(base_anchors, strides)
        } | {
            round(float((a[:, 1] + a[:, 3]).mean()) / 2 / s[1], 6)
            for a, s in zip(base_anchors, strides)
        }
        if len(offsets) != 1:
            raise ValueError(
                f'The anchors of {type(generator).__name__} are not centred '
                f'at one offset of the stride on every level ({offsets}); '
                'set base_anchors, strides and center_offset explicitly.')
        offset = offsets.pop()
    if levels is not None:
        anchors = [anchors[i] for i in levels]
        strides = [strides[i] for i in levels]
    return anchors, strides, offset


def as_anchor_tensors(base_anchors: Sequence) -> List[Tensor]:
    """Config anchors (lists of (w, h)) as (A, 2) float tensors."""
    return [
        torch.as_tensor(a, dtype=torch.float32).reshape(-1, 2)
        for a in base_anchors
    ]
