"""The fine-grained imitation mask of Wang et al. (CVPR 2019), in pure torch.

This module has no OpenMMLab dependency. For every ground-truth box ``k``
and every anchor of every cell of a feature level, the IoU between the box
and the anchor is compared with ``psi * m_k``, where ``m_k`` is the box's
best IoU over all anchors (of the level, or of all levels when ``joint``).
A cell is in the mask when any of its anchors passes for any box (strict
``>``, union over boxes and anchors).

The anchor of cell (row ``i``, column ``j``) with shape ``(w, h)`` is centred
at ``((j + 0.5) * sx, (i + 0.5) * sy)``: ``x`` follows the column, ``y`` the
row (a ``meshgrid`` with its default 'ij' indexing transposes them).

Implementation. Nothing loops over images or boxes in Python. Boxes are
padded to one ``(B, N, 4)`` tensor, and three facts keep the work near the
boxes instead of over the whole map (O(B * N * A * H * W) in the naive
per-box loop):

* the overlap of an anchor and a box is separable, ``inter = ox(j) * oy(i)``,
  and each factor is non-increasing in the distance between the anchor
  centre and the box centre, so ``m_k`` is reached at the cell whose centre
  is nearest the box centre: a closed form, evaluated at the two nearest
  cell centres per axis so that it equals a brute-force maximum exactly;
* a cell passes only if ``ox * oy > c`` with ``c = t (S_box + S_anchor) /
  (1 + t)``; as ``ox <= min(w_anchor, w_box)`` this bounds the rows a box
  can mark, and within a row (given ``oy``) the passing anchor centres are
  one interval with closed-form ends. Each (box, row, anchor) is one run
  of columns whose two ends are settled by the exact IoU test at the
  columns around them; runs are written as +1/-1 edges and summed along
  the rows, so the work is per box row, not per box cell;
* in joint mode a box is skipped on levels whose best IoU cannot pass its
  joint threshold.

The IoU is computed with the same formula as a brute-force implementation
(``inter / (area_box + area_anchor - inter)``) wherever a decision is made,
so the masks are the definition's (tested against a brute force and a
dense float32 evaluation, also with irrational anchor sides). The one
assumption is that along a row the computed IoU rises, stays, then falls;
where the anchor lies inside the box along x, the computed overlap is
``(c + w/2) - (c - w/2)``, exact for YOLO's integer anchors and
power-of-two strides, else equal to ``w`` up to one rounding, which could
only matter if a threshold fell within that rounding of a row's plateau
value (e.g. ``psi = 1``, whose mask is empty up to rounding).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

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
    over boxes and without a host-device round trip (the box counts are
    the tensors' shapes).

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
    flat = [
        torch.as_tensor(b).reshape(-1, 4).to(device=device, dtype=dtype)
        for b in gt_bboxes
    ]
    n_max = max((len(b) for b in flat), default=0)
    if n_max == 0:
        return (torch.zeros(num, 0, 4, device=device, dtype=dtype),
                torch.zeros(num, 0, device=device, dtype=torch.bool))
    # Padding rows are zero boxes, which are not valid boxes.
    boxes = pad_sequence(flat, batch_first=True)
    valid = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    return boxes, valid


def _overlap(lo: Tensor, hi: Tensor, centre: Tensor, half: Tensor) -> Tensor:
    """1-D overlap of [lo, hi] with [centre - half, centre + half] (all
    arguments broadcast), the formula every IoU here is computed with."""
    return (torch.minimum(hi, centre + half) -
            torch.maximum(lo, centre - half)).clamp(min=0)


def _iou(inter: Tensor, area_sum: Tensor) -> Tensor:
    """IoU from the intersection and ``area_box + area_anchor`` (the same
    operations, in the same order, as a brute-force IoU)."""
    return inter / (area_sum - inter)


class _Level:
    """The anchors and grid of one feature level (validated)."""

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
        self.anchors = anchors


_LEVELS_CACHE: dict = {}
_LEVELS_CACHE_SIZE = 64  # input sizes x devices x anchor sets


def _levels_key(featmap_sizes, strides, base_anchors, device, dtype):
    """A hashable key of the levels, or None when an anchor tensor is not
    on the CPU (reading its values would wait for the device)."""
    anchors = []
    for a in base_anchors:
        if isinstance(a, Tensor) and a.device.type != 'cpu':
            return None
        a = torch.as_tensor(a, dtype=torch.float64)
        anchors.append((tuple(a.shape), tuple(a.flatten().tolist())))
    try:
        sizes = tuple(tuple(int(v) for v in size) for size in featmap_sizes)
        strides = tuple(_as_stride(s) for s in strides)
    except (TypeError, ValueError):
        return None  # invalid: left to _Level's checks
    return (str(torch.device(device)), dtype, sizes, strides, tuple(anchors))


class _Levels:
    """All levels stacked, so that every step runs once for all levels.

    Levels with fewer anchors are padded by repeating their first anchor
    (a duplicate anchor changes neither a maximum nor an "any").
    """

    def __init__(self, featmap_sizes, strides, base_anchors, device, dtype):
        levels = [
            _Level(size, stride, anchors, device, dtype)
            for size, stride, anchors in zip(featmap_sizes, strides,
                                             base_anchors)
        ]
        self.num = len(levels)
        self.h = [lv.h for lv in levels]
        self.w = [lv.w for lv in levels]
        num_a = max(len(lv.anchors) for lv in levels)
        anchors = torch.stack([
            torch.cat([lv.anchors, lv.anchors[:1].expand(
                num_a - len(lv.anchors), 2)]) for lv in levels
        ])  # (L, A, 2)
        self.aw, self.ah = anchors[..., 0], anchors[..., 1]  # (L, A)
        self.area = self.aw * self.ah
        self.sx = torch.tensor([lv.sx for lv in levels], device=device,
                               dtype=dtype)
        self.sy = torch.tensor([lv.sy for lv in levels], device=device,
                               dtype=dtype)
        self.hs = torch.tensor(self.h, device=device)
        self.ws = torch.tensor(self.w, device=device)
        # Edge-array slots of one image per level (a spare column per row).
        self.slots = self.hs * (self.ws + 1)

    @classmethod
    def on(cls, featmap_sizes, strides, base_anchors, device,
           dtype) -> '_Levels':
        """The levels on ``device``, cached when the anchors are given on
        the CPU (as the mask recorder gives them): then they are checked
        and copied to the device once, not at every step (a copy to a GPU
        waits for the host)."""
        key = _levels_key(featmap_sizes, strides, base_anchors, device,
                          dtype)
        if key is None:
            return cls(featmap_sizes, strides, base_anchors, device, dtype)
        levels = _LEVELS_CACHE.get(key)
        if levels is None:
            levels = cls(featmap_sizes, strides, base_anchors, device, dtype)
            if len(_LEVELS_CACHE) >= _LEVELS_CACHE_SIZE:
                _LEVELS_CACHE.clear()
            _LEVELS_CACHE[key] = levels
        return levels

    def best_iou(self, boxes: Tensor) -> Tensor:
        """Highest IoU of each box over all anchors and cells: (L, B, N).

        ``boxes`` is (L, B, N, 4) (per-level shifted boxes). Each axis'
        overlap peaks at the cell centre nearest the box centre; both
        neighbours are evaluated, so ties and rounding match a dense
        maximum exactly.
        """
        x1, y1, x2, y2 = (boxes[..., k, None, None] for k in range(4))
        view = (self.num, 1, 1, 1, 1)
        ox = self._axis_overlap_at_nearest(x1, x2, self.sx.view(view),
                                           self.ws.view(view), self.aw)
        oy = self._axis_overlap_at_nearest(y1, y2, self.sy.view(view),
                                           self.hs.view(view), self.ah)
        inter = ox * oy  # (L, B, N, A)
        area_box = ((x2 - x1) * (y2 - y1))[..., 0]  # (L, B, N, 1)
        area_a = self.area[:, None, None, :]
        return _iou(inter, area_box + area_a).amax(dim=-1)

    def _axis_overlap_at_nearest(self, lo, hi, stride, size, anchor):
        # lo, hi (L, B, N, 1, 1); stride, size (L, 1, 1, 1, 1)
        centre = (lo + hi) / 2 / stride - 0.5  # in cell units
        cand = torch.cat([centre.floor(), centre.ceil()], dim=-1)
        cand = torch.minimum(cand.clamp(min=0), size - 1)  # (L, B, N, 1, 2)
        half = anchor[:, None, None, :, None] / 2  # (L, 1, 1, A, 1)
        return _overlap(lo, hi, (cand + 0.5) * stride,
                        half).amax(dim=-1)  # (L, B, N, A)

    def masks(self, boxes: Tensor, active: Tensor,
              thr: Tensor) -> List[Tensor]:
        """Masks (B, H_l, W_l) of all levels for the ``active`` boxes.

        ``boxes`` (L, B, N, 4), ``active`` and ``thr`` (L, B, N). The passing
        cells of one box, anchor and row are one run of columns (the IoU
        grows, then falls, along a row), so each run is written as a +1 at
        its first column and a -1 after its last into a per-row edge array
        whose cumulative sum counts the runs covering a cell: the cost is
        per box row, not per box cell (see :meth:`_fill`).
        """
        num_levels, num_imgs, num_boxes = active.shape
        # one spare column per row holds the -1 of runs ending at W - 1
        sizes = [num_imgs * h * (w + 1) for h, w in zip(self.h, self.w)]
        device = boxes.device
        edges = torch.zeros(sum(sizes), dtype=torch.int32, device=device)
        offsets = (torch.cumsum(self.slots, 0) - self.slots) * num_imgs
        # Every (level, image, box) is an entry; inactive ones get no row.
        # (Compacting the active ones would need one more round trip to
        # the host on a GPU, and the work per entry is small.)
        entries = (num_levels, num_imgs, num_boxes)
        lvl = torch.arange(num_levels, device=device).view(-1, 1, 1)
        img = torch.arange(num_imgs, device=device).view(1, -1, 1)
        self._fill(edges, offsets, lvl.expand(entries).reshape(-1),
                   img.expand(entries).reshape(-1), boxes.reshape(-1, 4),
                   thr.reshape(-1), active.reshape(-1))
        # Every run's +1 and -1 lie in the same row, so one running sum
        # over all rows of all levels counts the runs covering each cell.
        covered = edges.cumsum(0, dtype=edges.dtype) > 0
        return [
            m.view(num_imgs, h, w + 1)[..., :w].contiguous()
            for m, h, w in zip(covered.split(sizes), self.h, self.w)
        ]

    def _fill(self, edges, offsets, lvl, img, bx, t, keep) -> None:
        """Write the runs of passing cells of every kept (level, image,
        box) entry: ``lvl`` and ``img`` (M,) hold their level and image
        indices, ``bx`` (M, 4) their boxes, ``t`` (M,) their thresholds.

        With ``c = t (S_box + S_anchor) / (1 + t)``, IoU > t is ``inter >
        c``. Rows: as ``ox <= min(w_anchor, w_box)``, a passing cell needs
        ``oy > c / min(w_anchor, w_box)``, which bounds the rows to a
        window around the box centre (with a slack against rounding).
        Columns, per row and anchor: ``ox > q = c / oy`` holds for anchor
        centres in ``(x1 - w_anchor / 2 + q, x2 + w_anchor / 2 - q)``, a
        closed form. Widened by a slack larger than any rounding (and far
        smaller than a cell), the first passing column is the widened
        bound's column or the next one: the exact IoU test (the
        brute-force formula) at those two columns per end decides the run
        (the last column likewise). The cells between the ends pass too:
        the computed IoU is monotone on each side of its maximum along a
        row (on the plateau where the anchor lies inside the box along x,
        the overlap is ``w_anchor`` up to rounding of the anchor edges;
        with YOLO's integer anchors and power-of-two strides it is exact).
        """
        # Layout: the rows (or entries) are the last, contiguous axis and
        # the anchors and tested columns lie in front of it, so that every
        # broadcast runs along a long inner axis (a short inner axis of 3
        # anchors or 4 columns makes each elementwise op several times
        # slower on CPU).
        sx, sy, h, w = self.sx[lvl], self.sy[lvl], self.hs[lvl], self.ws[lvl]
        # (A, M) each
        aw, ah, area_a = (v[lvl].t() for v in (self.aw, self.ah, self.area))
        x1, y1, x2, y2 = bx.unbind(-1)
        bw, bh = x2 - x1, y2 - y1
        area_b = bw * bh
        c = t * (area_b + area_a) / (1 + t)
        ry = (ah + bh) / 2 - c / torch.minimum(aw, bw)
        feasible = ry > 0
        # Slack against rounding at the bound (the IoU test decides).
        ry = torch.where(feasible, ry, ry.new_zeros(())).amax(0) * \
            (1 + 1e-4) + 1e-3 * sy
        cy = (y1 + y2) / 2
        h1 = (h - 1).to(bx.dtype)
        lo_i = torch.minimum(
            torch.floor((cy - ry) / sy - 0.5).clamp(min=0), h1).long()
        hi_i = torch.minimum(
            torch.ceil((cy + ry) / sy - 0.5).clamp(min=0), h1).long()
        base = offsets[lvl] + img * h * (w + 1)  # flat index of (0, 0)
        # One entry per (level, image, box, row): no padding, no loop.
        num_rows = torch.where(feasible.any(0) & keep, hi_i - lo_i + 1,
                               hi_i.new_zeros(()))
        total = int(num_rows.sum())  # the one round trip to the host
        if total == 0:
            return
        device = edges.device
        e = torch.repeat_interleave(
            torch.arange(len(bx), device=device), num_rows,
            output_size=total)
        # Everything a row needs, prepared per (anchor, entry) or per entry
        # and copied to the rows with one gather. The bounds are widened
        # by a slack larger than any rounding (far below a cell): the first
        # passing column is then `first` or `first + 1`, the last one
        # `last` or `last - 1`.
        half_w, half_h = aw / 2, ah / 2
        slack = 1e-3 * sx + 1e-6 * (x1.abs() + x2.abs()) + 1e-6 * aw
        inv_sx = 1 / sx
        first_row = torch.cumsum(num_rows, 0) - num_rows
        num_a = aw.shape[0]
        # One gather (along the last axis of a 2-D tensor: far faster than
        # along the last axis of a 3-D one) copies all fields to the rows.
        fields = torch.cat([
            torch.stack([
                half_w, half_h, area_b + area_a, c,
                (x1 - half_w - slack) * inv_sx - 0.5,
                (x2 + half_w + slack) * inv_sx - 0.5
            ]).view(6 * num_a, -1),
            torch.stack([
                x1, y1, x2, y2, sx, sy, inv_sx, t, (w - 1).to(bx.dtype),
                (lo_i - first_row).to(bx.dtype)
            ])
        ]).index_select(1, e)
        per_anchor, per_entry = fields.split([6 * num_a, 10])
        r_hw, r_hh, r_sum, r_c, u_first, u_last = per_anchor.view(
            6, num_a, total).unbind(0)  # (A, R) each
        r_x1, r_y1, r_x2, r_y2, r_sx, r_sy, r_inv_sx, r_t, w1, r_lo = \
            per_entry.unbind(0)  # (R,) each
        # (R,) row index, exact in floats
        rows = r_lo + torch.arange(total, device=device, dtype=bx.dtype)
        centre_y = (rows + 0.5) * r_sy
        oy = _overlap(r_y1, r_y2, centre_y, r_hh)  # (A, R)
        q = torch.where(oy > 0, r_c / oy, oy.new_full((), math.inf))
        q = q * r_inv_sx
        first = torch.minimum(torch.ceil(u_first + q).clamp(min=0), w1)
        last = torch.minimum(torch.floor(u_last - q).clamp(min=0), w1)
        # The exact test (a brute force's formula) at those four columns:
        # (4, A, R).
        cols = torch.stack([first, first + 1, last, last - 1])
        centre_x = (cols + 0.5) * r_sx
        ox = _overlap(r_x1, r_x2, centre_x, r_hw)
        ok = _iou(oy * ox, r_sum) > r_t
        ok_first, ok_first1, ok_last, ok_last1 = ok.unbind(0)
        ok_first1 &= first < w1  # column W does not exist
        ok_last1 &= last > 0  # nor does column -1
        start = first + (~ok_first).to(first.dtype)
        stop = last - (~ok_last).to(last.dtype)
        run = (ok_first | ok_first1) & (ok_last | ok_last1) & (start <= stop)
        # Rows hold W + 1 slots: the -1 of a run ending at W - 1 fits.
        row_base = (base.index_select(0, e) + rows.long() *
                    (w.index_select(0, e) + 1))
        # (Anchor, row) pairs without a run add 0 inside their row instead
        # of being compacted out (a boolean index costs more than the adds).
        pos = torch.stack([row_base + start.long().clamp(min=0),
                           row_base + stop.long().clamp(min=0) + 1])
        one = run.to(edges.dtype)
        edges.index_add_(0, pos.view(-1), torch.cat([one, -one]).view(-1))


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
    stack = _Levels.on(featmap_sizes, strides, base_anchors_per_level,
                       boxes.device, boxes.dtype)
    if boxes.shape[1] == 0:
        return [
            torch.zeros(boxes.shape[0], h, w, dtype=torch.bool,
                        device=boxes.device) for h, w in zip(stack.h, stack.w)
        ]
    # Degenerate boxes are zeroed so that they make no NaN anywhere.
    boxes = torch.where(valid[..., None], boxes, boxes.new_zeros(()))
    # An anchor at (j + o) * s sees box b as the anchor at (j + 0.5) * s
    # sees b shifted by (0.5 - o) * s: shift the boxes per level.
    shift = torch.stack([stack.sx, stack.sy, stack.sx, stack.sy], dim=1)
    offset = (shift * (0.5 - center_offset))[:, None, None, :]
    level_boxes = boxes[None] + offset
    best = stack.best_iou(level_boxes)  # (L, B, N)
    if joint:
        thr = psi * best.amax(dim=0, keepdim=True)
        # A level whose best IoU does not pass cannot hold a mask cell.
        active = valid[None] & (best > thr)
        thr = thr.expand_as(best)
    else:
        thr = psi * best
        active = valid[None] & (best > 0)
    return stack.masks(level_boxes, active, thr)


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
                 strides: Sequence[Stride],
                 center_offset: float = 0.5) -> List[Tensor]:
    """Cells whose centre lies inside a ground-truth box (the paper's
    "GT box" ablation, a coarser mask than :func:`imitation_masks`).

    Args:
        gt_bboxes (Sequence[Tensor]): B tensors (N_b, 4), xyxy pixels.
        featmap_sizes (Sequence[Sequence[int]]): (H_l, W_l) per level.
        strides (Sequence[int | tuple]): Stride per level.
        center_offset (float): Cell centres lie at ``(j + center_offset) *
            sx``, ``(i + center_offset) * sy``, as the anchors of
            :func:`imitation_masks`. Defaults to 0.5.

    Returns:
        list[Tensor]: BoolTensor (B, H_l, W_l) per level.
    """
    boxes, valid = pad_gt_bboxes(gt_bboxes)
    masks = []
    for size, stride in zip(featmap_sizes, strides):
        h, w = (int(s) for s in size)
        sx, sy = _as_stride(stride)
        cx = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) +
              center_offset) * sx
        cy = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) +
              center_offset) * sy
        in_x = (cx > boxes[..., 0:1]) & (cx < boxes[..., 2:3])  # (B, N, W)
        in_y = (cy > boxes[..., 1:2]) & (cy < boxes[..., 3:4])  # (B, N, H)
        in_x &= valid[..., None]
        masks.append(
            torch.einsum('bnh,bnw->bhw', in_y.to(boxes.dtype),
                         in_x.to(boxes.dtype)) > 0)
    return masks
