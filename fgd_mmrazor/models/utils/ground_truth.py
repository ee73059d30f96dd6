"""Ground-truth boxes from the ``data_samples`` a detector receives.

Two layouts reach a detector's ``forward(inputs, data_samples)`` in training:

* mmdet: a list of ``DetDataSample`` with ``gt_instances.bboxes`` (a tensor
  or ``HorizontalBoxes``), one per image;
* mmyolo's packed batch (``YOLOv5DetDataPreprocessor``): a dict whose
  ``'bboxes_labels'`` is (M, 6) ``[img_idx, cls, x1, y1, x2, y2]``.

Both give boxes in the padded batch-input frame, which is the frame of the
feature maps.
"""
from typing import Any, List

import torch
from torch import Tensor

__all__ = ['gt_bboxes_from_data_samples']


def _split_packed(bboxes_labels: Tensor, num_imgs: int) -> List[Tensor]:
    """Split mmyolo's (M, 6) packed boxes by image, without a box loop and
    with one read of the device (the range check and the counts
    together)."""
    if len(bboxes_labels) == 0:
        return [bboxes_labels.new_zeros((0, 4)) for _ in range(num_imgs)]
    img = bboxes_labels[:, 0].long()
    counts = torch.zeros(num_imgs, dtype=torch.long, device=img.device)
    counts.index_add_(0, img.clamp(0, num_imgs - 1), torch.ones_like(img))
    lo, hi, *counts = torch.cat([img.min().view(1), img.max().view(1),
                                 counts]).tolist()
    if lo < 0 or hi >= num_imgs:
        raise ValueError(
            "data_samples['bboxes_labels'][:, 0] must hold image indices in "
            f'[0, {num_imgs}), got [{lo}, {hi}]')
    order = torch.argsort(img, stable=True)
    return list(torch.split(bboxes_labels[order, 2:6], counts))


def gt_bboxes_from_data_samples(data_samples: Any,
                                num_imgs: int) -> List[Tensor]:
    """Per-image ground-truth boxes (xyxy, input pixels).

    Args:
        data_samples: mmdet's ``list[DetDataSample]`` or mmyolo's packed
            dict with ``'bboxes_labels'``.
        num_imgs (int): Batch size (images without boxes get (0, 4)).

    Returns:
        list[Tensor]: ``num_imgs`` tensors of shape (N_b, 4).
    """
    if isinstance(data_samples, dict):
        if 'bboxes_labels' not in data_samples:
            raise KeyError(
                "mmyolo's packed data_samples need a 'bboxes_labels' entry; "
                f'got keys {sorted(data_samples)}')
        return _split_packed(data_samples['bboxes_labels'], num_imgs)
    if isinstance(data_samples, (list, tuple)):
        if len(data_samples) != num_imgs:
            raise ValueError(f'got {len(data_samples)} data samples for a '
                             f'batch of {num_imgs} images')
        boxes = []
        for sample in data_samples:
            bboxes = sample.gt_instances.bboxes
            bboxes = getattr(bboxes, 'tensor', bboxes)  # HorizontalBoxes
            boxes.append(bboxes.reshape(-1, 4))
        return boxes
    raise TypeError(
        'data_samples must be a list of DetDataSample (mmdet) or a dict with '
        f"'bboxes_labels' (mmyolo), got {type(data_samples).__name__}. Is "
        "the mask recorder's source the detector itself (source='')?")
