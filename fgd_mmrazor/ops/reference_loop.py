"""The naive per-box loop that computes the imitation masks, for
benchmarks and tests only.

``loop_imitation_masks`` is how a direct port of the paper's mask is
usually written: a Python loop over images and boxes, every anchor of every
cell against every box, the per-level maximum IoU. With the cells in
row-major order and the detector's anchors per level its masks equal
``imitation_masks(..., joint=False)``. It is the reference that the
benchmark's speed-up is measured against.
"""
from typing import List, Sequence

import torch
from torch import Tensor

__all__ = ['loop_imitation_masks']


def _anchor_boxes(h: int, w: int, sx: float, sy: float,
                  anchors: Tensor) -> Tensor:
    """(H * W * A, 4) xyxy anchors, row-major cells, x from the column."""
    ys = (torch.arange(h, dtype=anchors.dtype) + 0.5) * sy
    xs = (torch.arange(w, dtype=anchors.dtype) + 0.5) * sx
    cy, cx = torch.meshgrid(ys, xs, indexing='ij')
    centres = torch.stack([cx, cy], -1).view(h, w, 1, 2)
    half = (anchors / 2).view(1, 1, -1, 2)
    return torch.cat([centres - half, centres + half], -1).view(-1, 4)


def _iou(a: Tensor, b: Tensor) -> Tensor:
    """(M, N) IoU of xyxy boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None]
    return inter / (area_a + area_b - inter)


def loop_imitation_masks(gt_bboxes: Sequence[Tensor],
                         featmap_sizes: Sequence[Sequence[int]],
                         strides: Sequence, base_anchors: Sequence[Tensor],
                         psi: float = 0.5) -> List[Tensor]:
    """Per-level masks with the naive per-box loop (per-level maximum)."""
    out = []
    for (h, w), stride, anchors in zip(featmap_sizes, strides,
                                       base_anchors):
        sx, sy = (stride, stride) if isinstance(stride,
                                                (int, float)) else stride
        grid = _anchor_boxes(h, w, float(sx), float(sy), anchors.float())
        num_anchors = len(anchors)
        masks = torch.zeros(len(gt_bboxes), h, w)
        for i, boxes in enumerate(gt_bboxes):  # the image loop
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            boxes = boxes[keep].float()
            if not len(boxes):
                continue
            ious = _iou(grid, boxes).view(h, w, num_anchors, len(boxes))
            max_iou = ious.view(-1, len(boxes)).max(dim=0).values
            thr = max_iou * psi
            mask_img = torch.zeros(h, w)
            for k in range(len(boxes)):  # the box loop
                mask_img += (ious[:, :, :, k] > thr[k]).sum(dim=2)
            masks[i] = mask_img
        out.append(masks.clamp(0, 1).bool())
    return out
