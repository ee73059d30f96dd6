"""The fine-grained imitation mask of Wang et al. (CVPR 2019), in pure torch.

This module has no OpenMMLab dependency. For every ground-truth box ``k``
and every anchor of every cell of a feature level, the IoU between the box
and the anchor is compared with ``psi * m_k``, where ``m_k`` is the box's
best IoU over all anchors (of the level, or of all levels when ``joint``).
A cell is in the mask when any of its anchors passes for any box (strict
``>``, union over boxes and anchors).

The anchor of cell (row ``i``, column ``j``) with shape ``(w, h)`` is centred
at ``((j + 0.5) * sx, (i + 0.5) * sy)``: ``x`` follows the column, ``y`` the
row (the seed's ``meshgrid`` transposed them).

Implementation. Nothing loops over images or boxes in Python. Boxes are
padded to one ``(B, N, 4)`` tensor, and three facts keep the work near the
boxes instead of over the whole map (O(B * N * A * H * W) in the seed):

* the overlap of an anchor and a box is separable, ``inter = ox(j) * oy(i)``,
  and each factor is non-increasing in the distance between the anchor
  centre and the box centre, so ``m_k`` is reached at the cell whose centre
  is nearest the box centre: a closed form, evaluated at the two nearest
  cell centres per axis so that it equals a brute-force maximum exactly;
* a cell passes only if ``ox * oy > c`` with ``c = t (S_box + S_anchor) /
  (1 + t)``; as ``oy <= min(h_anchor, h_box)`` this bounds the centre
  distance along x (and likewise y), so each box is evaluated only in the
  window of cells that can pass, and boxes are grouped by window size
  (powers of two; a loop over at most log2(map size) groups);
* in joint mode a box is skipped on levels whose best IoU cannot pass its
  joint threshold.

The IoU itself is computed with the same formula as a brute-force
implementation (``inter / (area_box + area_anchor - inter)``), so the masks
are exactly the definition's; the window bounds only skip cells that fail.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    'imitation_mask', 'imitation_masks', 'gt_box_masks', 'pad_gt_bboxes',
    'featmap_sizes_for'
]

Stride = Union[int, float, Sequence[Union[int, float]]]


def _as_stride(stride: Stride) -> Tuple[float, float]:
    """Normalise an int or ``(sx, sy)`` stride to two positive floats."""
    if isinstance(stride, (int, float)):
        sx = sy = float(stride)
    else:
        if len(stride) != 2:
            raise ValueError(f'stride must be an int or (sx, sy), got '
                             f'{stride!r}')
        sx, sy = float(stride[0]), float(stride[1])
    if not (sx > 0 and sy > 0):
        raise ValueError(f'stride must be positive, got {stride!r}')
    return sx, sy


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """IoU is computed in float32 at least (fp16 would round thresholds)."""
    if dtype == torch.float64:
        return dtype
    return torch.float32


def pad_gt_bboxes(gt_bboxes: Sequence[Tensor],
                  device: Optional[torch.device] = None,
                  dtype: Optional[torch.dtype] = None
                  ) -> Tuple[Tensor, Tensor]:
    """Pad a list of per-image boxes into one tensor, without a Python loop
    over boxes.

    Args:
        gt_bboxes (Sequence[Tensor]): B tensors of shape (N_b, 4), xyxy.
        device (torch.device, optional): Output device. Defaults to the
            boxes' device.
        dtype (torch.dtype, optional): Output dtype. Defaults to float32
            (float64 when the boxes are float64).

    Returns:
        tuple[Tensor, Tensor]: ``boxes`` (B, N, 4) and ``valid`` (B, N), where
        N is the largest N_b and ``valid`` marks real boxes with positive
        width and height.
    """
    num = len(gt_bboxes)
    if device is None:
        device = gt_bboxes[0].device if num else torch.device('cpu')
    if dtype is None:
        dtype = _compute_dtype(gt_bboxes[0].dtype) if num else torch.float32
    flat = [torch.as_tensor(b).reshape(-1, 4) for b in gt_bboxes]
    counts = torch.tensor([len(b) for b in flat], device=device)
    n_max = int(counts.max()) if num else 0
    boxes = torch.zeros(num, n_max, 4, device=device, dtype=dtype)
    valid = torch.zeros(num, n_max, device=device, dtype=torch.bool)
    if n_max == 0:
        return boxes, valid
    cat = torch.cat(flat).to(device=device, dtype=dtype)
    img = torch.repeat_interleave(torch.arange(num, device=device), counts)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(cat), device=device) - starts[img]
    boxes[img, pos] = cat
    valid[img, pos] = ((cat[:, 2] > cat[:, 0]) & (cat[:, 3] > cat[:, 1]))
    return boxes, valid


def _overlap(lo: Tensor, hi: Tensor, centre: Tensor, size: Tensor) -> Tensor:
    """1-D overlap of [lo, hi] with [centre - size/2, centre + size/2].

    Shapes: ``lo``/``hi`` (B, N, 1, 1), ``centre`` (B, N, 1, K) or (1, 1, 1,
    K), ``size`` (1, 1, A, 1); result (B, N, A, K).
    """
    half = size / 2
    return (torch.minimum(hi, centre + half) -
            torch.maximum(lo, centre - half)).clamp(min=0)


def _iou(inter: Tensor, area_box: Tensor, area_anchor: Tensor) -> Tensor:
    """IoU from the intersection (same formula as a brute-force IoU)."""
    return inter / (area_box + area_anchor - inter)


class _Level:
    """The anchors and grid of one feature level, in the compute dtype."""

    def __init__(self, featmap_size, stride, base_anchors, device, dtype):
        self.h, self.w = (int(s) for s in featmap_size)
        if self.h <= 0 or self.w <= 0:
            raise ValueError(f'featmap_size must be positive, got '
                             f'{tuple(featmap_size)}')
        self.sx, self.sy = _as_stride(stride)
        anchors = torch.as_tensor(base_anchors).to(device=device,
                                                   dtype=dtype)
        if anchors.dim() != 2 or anchors.shape[1] != 2 or not len(anchors):
            raise ValueError('base_anchors must have shape (A, 2) with A > 0 '
                             f'(w, h) pairs, got {tuple(anchors.shape)}')
        if not bool((anchors > 0).all()):
            raise ValueError('anchor widths and heights must be positive')
        self.aw = anchors[:, 0].view(1, 1, -1, 1)  # (1, 1, A, 1)
        self.ah = anchors[:, 1].view(1, 1, -1, 1)
        self.area = (anchors[:, 0] * anchors[:, 1]).view(1, 1, -1)
        self.aw_max = float(anchors[:, 0].max())
        self.ah_max = float(anchors[:, 1].max())

    def best_iou(self, boxes: Tensor) -> Tensor:
        """Highest IoU of each box over all anchors and cells: (B, N).

        Each axis' overlap peaks at the cell centre nearest the box centre;
        both neighbours are evaluated, so ties and rounding match a dense
        maximum exactly.
        """
        x1, y1, x2, y2 = (boxes[..., k, None, None] for k in range(4))
        ox = self._axis_overlap_at_nearest(x1, x2, self.sx, self.w, self.aw)
        oy = self._axis_overlap_at_nearest(y1, y2, self.sy, self.h, self.ah)
        inter = ox * oy  # (B, N, A)
        area_box = ((x2 - x1) * (y2 - y1))[..., 0]  # (B, N, 1)
        return _iou(inter, area_box, self.area).amax(dim=-1)

    @staticmethod
    def _axis_overlap_at_nearest(lo, hi, stride, size, anchor):
        centre = (lo + hi) / 2 / stride - 0.5  # in cell units
        cand = torch.cat([centre.floor(), centre.ceil()], dim=-1)
        cand = cand.clamp(0, size - 1)  # (B, N, 1, 2)
        ov = _overlap(lo, hi, (cand + 0.5) * stride, anchor)
        return ov.amax(dim=-1)  # (B, N, A)


def _level_mask(level: _Level, boxes: Tensor, active: Tensor,
                thr: Tensor) -> Tensor:
    """Mask (B, H, W) of one level for the ``active`` boxes.

    Only the cells that can pass are evaluated. With ``c = t (S_box +
    S_anchor) / (1 + t)``, IoU > t is ``inter > c``; as ``inter = ox * oy``
    and ``oy <= min(h_anchor, h_box)``, a passing cell needs
    ``ox > c / min(h_anchor, h_box)``, i.e. a centre distance below
    ``rx = (w_anchor + w_box) / 2 - c / min(h_anchor, h_box)`` (and the same
    for y). Each box is evaluated in the window of cells within
    ``(rx, ry)`` of its centre (anchors that cannot pass at all are
    dropped); boxes are grouped by window size (powers of two), so a few
    large boxes do not enlarge every window. The IoU itself is computed
    exactly as a brute force would.
    """
    num_imgs, h, w = boxes.shape[0], level.h, level.w
    mask = torch.zeros(num_imgs * h * w, dtype=torch.bool,
                       device=boxes.device)
    idx = torch.nonzero(active)  # (M, 2): image, box
    if len(idx) == 0:
        return mask.view(num_imgs, h, w)
    img, box = idx[:, 0], idx[:, 1]
    bx, t = boxes[img, box], thr[img, box]  # (M, 4), (M,)
    x1, y1, x2, y2 = bx.unbind(-1)
    bw, bh = x2 - x1, y2 - y1
    aw, ah, area_a = level.aw.view(-1), level.ah.view(-1), level.area.view(
        -1)
    area_b = bw * bh
    c = t[:, None] * (area_b[:, None] + area_a) / (1 + t[:, None])  # (M, A)
    rx = (aw + bw[:, None]) / 2 - c / torch.minimum(ah, bh[:, None])
    ry = (ah + bh[:, None]) / 2 - c / torch.minimum(aw, bw[:, None])
    feasible = (rx > 0) & (ry > 0)
    # Slack against rounding at the bound (the IoU test decides).
    rx = torch.where(feasible, rx, rx.new_zeros(())).amax(1) * (1 + 1e-4) \
        + 1e-3 * level.sx
    ry = torch.where(feasible, ry, ry.new_zeros(())).amax(1) * (1 + 1e-4) \
        + 1e-3 * level.sy
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    lo_j = torch.floor((cx - rx) / level.sx - 0.5).clamp(0, w - 1).long()
    hi_j = torch.ceil((cx + rx) / level.sx - 0.5).clamp(0, w - 1).long()
    lo_i = torch.floor((cy - ry) / level.sy - 0.5).clamp(0, h - 1).long()
    hi_i = torch.ceil((cy + ry) / level.sy - 0.5).clamp(0, h - 1).long()
    keep = feasible.any(1)
    kx, ky = hi_j - lo_j + 1, hi_i - lo_i + 1
    bucket = torch.ceil(torch.log2(torch.maximum(kx, ky).float())).long()
    bucket = torch.where(keep, bucket, bucket.new_full((), -1))
    # One gather per bucket: per-box floats and ints packed together.
    floats = torch.stack([x1, y1, x2, y2, area_b, t], dim=1)
    ints = torch.stack([img, lo_i, lo_j], dim=1)
    aw, ah, area_a = aw.view(1, 1, -1), ah.view(1, 1, -1), area_a.view(
        1, 1, 1, -1)
    for b in torch.unique(bucket).tolist():
        if b < 0:
            continue
        sel = torch.nonzero(bucket == b).view(-1)
        n_x, n_y = int(kx[sel].max()), int(ky[sel].max())
        f, (s_img, s_lo_i, s_lo_j) = floats[sel], ints[sel].unbind(1)
        # (m, K) cell indices; repeated edge cells are harmless (OR).
        cols = (s_lo_j[:, None] +
                torch.arange(n_x, device=bx.device)).clamp(max=w - 1)
        rows = (s_lo_i[:, None] +
                torch.arange(n_y, device=bx.device)).clamp(max=h - 1)
        ox = _overlap(f[:, 0, None, None], f[:, 2, None, None],
                      ((cols.to(f.dtype) + 0.5) * level.sx)[..., None],
                      aw)  # (m, Kx, A)
        oy = _overlap(f[:, 1, None, None], f[:, 3, None, None],
                      ((rows.to(f.dtype) + 0.5) * level.sy)[..., None],
                      ah)  # (m, Ky, A)
        inter = oy.unsqueeze(2) * ox.unsqueeze(1)  # (m, Ky, Kx, A)
        iou = _iou(inter, f[:, 4, None, None, None], area_a)
        # some anchor passes  <=>  the best anchor passes
        hit = iou.amax(dim=-1) > f[:, 5, None, None]  # (m, Ky, Kx)
        flat = (s_img[:, None, None] * h + rows[:, :, None]) * w + \
            cols[:, None, :]
        mask[flat[hit]] = True
    return mask.view(num_imgs, h, w)


def imitation_masks(gt_bboxes: Sequence[Tensor],
                    featmap_sizes: Sequence[Sequence[int]],
                    strides: Sequence[Stride],
                    base_anchors_per_level: Sequence[Tensor],
                    psi: float = 0.5,
                    joint: bool = True,
                    center_offset: float = 0.5) -> List[Tensor]:
    """Fine-grained imitation masks of several feature levels.

    Args:
        gt_bboxes (Sequence[Tensor]): B tensors of shape (N_b, 4), xyxy in
            input-image pixels; N_b may be 0. Boxes without positive width
            and height are ignored; boxes partly outside the image count.
        featmap_sizes (Sequence[Sequence[int]]): (H_l, W_l) per level.
        strides (Sequence[int | tuple]): Stride per level, an int or
            (sx, sy) in pixels.
        base_anchors_per_level (Sequence[Tensor]): (A_l, 2) anchor (w, h) in
            pixels, per level.
        psi (float): The threshold factor in (0, 1]: a cell is kept when an
            anchor's IoU with box k is > ``psi * m_k``. Defaults to 0.5.
        joint (bool): If True, m_k is box k's best IoU over the anchors of
            all levels (each box is imitated on the level(s) that match it
            best); if False, over the anchors of each level separately.
            Defaults to True.
        center_offset (float): Anchor centres lie at ``(j + center_offset)
            * sx``, ``(i + center_offset) * sy``. 0.5 (the default) is the
            cell centre (YOLO anchors, mmdet's point generators); mmdet's
            ``AnchorGenerator`` (RetinaNet, RPN) uses 0.

    Returns:
        list[Tensor]: One BoolTensor of shape (B, H_l, W_l) per level, on the
        boxes' device.

    Example:
        >>> boxes = [torch.tensor([[0., 0., 32., 32.]])]
        >>> anchors = torch.tensor([[16., 16.], [32., 32.]])
        >>> masks = imitation_masks(boxes, [(4, 4)], [16], [anchors])
        >>> masks[0].shape
        torch.Size([1, 4, 4])
    """
    num_levels = len(featmap_sizes)
    if not (len(strides) == num_levels == len(base_anchors_per_level)):
        raise ValueError(
            'featmap_sizes, strides and base_anchors_per_level must have one '
            f'entry per level, got {num_levels}, {len(strides)} and '
            f'{len(base_anchors_per_level)}')
    if not (isinstance(psi, (int, float)) and 0 < psi <= 1):
        raise ValueError(f'psi must be in (0, 1], got {psi!r}')
    boxes, valid = pad_gt_bboxes(gt_bboxes)
    levels = [
        _Level(size, stride, anchors, boxes.device, boxes.dtype) for size,
        stride, anchors in zip(featmap_sizes, strides, base_anchors_per_level)
    ]
    if boxes.shape[1] == 0:
        return [
            torch.zeros(boxes.shape[0], lv.h, lv.w, dtype=torch.bool,
                        device=boxes.device) for lv in levels
        ]
    # Degenerate boxes are zeroed so that they make no NaN anywhere.
    boxes = torch.where(valid[..., None], boxes, boxes.new_zeros(()))
    if center_offset == 0.5:
        level_boxes = [boxes] * num_levels
    else:
        # An anchor at (j + o) * s sees box b as the anchor at (j + 0.5) * s
        # sees b shifted by (0.5 - o) * s: shift the boxes per level.
        level_boxes = [
            boxes + boxes.new_tensor([lv.sx, lv.sy, lv.sx, lv.sy]) *
            (0.5 - center_offset) for lv in levels
        ]
    best = [lv.best_iou(b) for lv, b in zip(levels, level_boxes)]
    if joint:
        joint_best = torch.stack(best).amax(dim=0)
        thr = psi * joint_best
        # A level whose best IoU does not pass cannot hold a mask cell.
        active = [valid & (b > thr) for b in best]
        thrs = [thr] * num_levels
    else:
        thrs = [psi * b for b in best]
        active = [valid & (b > 0) for b in best]
    return [
        _level_mask(lv, b, act, t)
        for lv, b, act, t in zip(levels, level_boxes, active, thrs)
    ]


def imitation_mask(gt_bboxes: Sequence[Tensor],
                   featmap_size: Sequence[int],
                   stride: Stride,
                   base_anchors: Tensor,
                   psi: float = 0.5) -> Tensor:
    """Fine-grained imitation mask of one feature level.

    See :func:`imitation_masks` for the arguments; here m_k is the best IoU
    over this level's anchors.

    Returns:
        Tensor: BoolTensor of shape (B, H, W).
    """
    return imitation_masks(
        gt_bboxes, [featmap_size], [stride], [base_anchors],
        psi=psi,
        joint=False)[0]


def featmap_sizes_for(input_hw: Sequence[int],
                      strides: Sequence[Stride]) -> List[Tuple[int, int]]:
    """Feature sizes ``ceil(H / sy), ceil(W / sx)`` of a padded input.

    This is the size of a stride-s map produced by 'same'-padded stride-2
    convolutions, as in YOLO, ResNet and CSP backbones.
    """
    sizes = []
    for stride in strides:
        sx, sy = _as_stride(stride)
        sizes.append((math.ceil(input_hw[0] / sy),
                      math.ceil(input_hw[1] / sx)))
    return sizes


def gt_box_masks(gt_bboxes: Sequence[Tensor],
                 featmap_sizes: Sequence[Sequence[int]],
                 strides: Sequence[Stride]) -> List[Tensor]:
    """Cells whose centre lies inside a ground-truth box (the paper's
    "GT box" ablation, a coarser mask than :func:`imitation_masks`).

    Args:
        gt_bboxes (Sequence[Tensor]): B tensors (N_b, 4), xyxy pixels.
        featmap_sizes (Sequence[Sequence[int]]): (H_l, W_l) per level.
        strides (Sequence[int | tuple]): Stride per level.

    Returns:
        list[Tensor]: BoolTensor (B, H_l, W_l) per level.
    """
    boxes, valid = pad_gt_bboxes(gt_bboxes)
    masks = []
    for size, stride in zip(featmap_sizes, strides):
        h, w = (int(s) for s in size)
        sx, sy = _as_stride(stride)
        cx = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) +
              0.5) * sx
        cy = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) +
              0.5) * sy
        in_x = (cx > boxes[..., 0:1]) & (cx < boxes[..., 2:3])  # (B, N, W)
        in_y = (cy > boxes[..., 1:2]) & (cy < boxes[..., 3:4])  # (B, N, H)
        in_x &= valid[..., None]
        masks.append(
            torch.einsum('bnh,bnw->bhw', in_y.to(boxes.dtype),
                         in_x.to(boxes.dtype)) > 0)
    return masks
