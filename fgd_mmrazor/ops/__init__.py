"""Framework-free tensor operations."""
from .imitation_mask import (featmap_sizes_for, gt_box_masks, imitation_mask,
                             imitation_masks, pad_gt_bboxes)
from .masked_conv import mask_cells

__all__ = [
    'imitation_mask', 'imitation_masks', 'gt_box_masks', 'pad_gt_bboxes',
    'featmap_sizes_for', 'mask_cells'
]
