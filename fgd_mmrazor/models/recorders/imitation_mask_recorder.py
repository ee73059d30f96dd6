"""A recorder that turns the detector's ground truth into imitation masks.

Ground truth reaches the loss through MMRazor's own machinery: this recorder
records the inputs ``(batch_inputs, data_samples)`` of the detector itself
(``source=''``), like ``ModuleInputs``, but in a forward *pre*-hook and as a
copy of the boxes: mmyolo's YOLOv5 head rewrites ``bboxes_labels`` in place
(to normalised cx, cy, w, h) during the forward, so boxes read after it are
wrong. When a loss asks for a record, the recorder computes the masks of
all levels once for that forward (joint max IoU needs all levels at once)
and returns the level named by ``data_idx``. The mask is computed once per
step, however many losses read it.

On a GPU, reading a mask's size (to find its cells, or the rows the
boxes mark) waits for the device. ``FGDDistill`` therefore calls
:meth:`ImitationMaskRecorder.prime` with the batch before either network's
forward is queued, which computes the masks and, when the losses read them
(the sparse adapters), the masked cells of every level
(:meth:`ImitationMaskRecorder.get_record_cells`, one wait for all
levels): those waits then cost the mask's own time, not the forwards'.

Config::

    student_recorders=dict(
        imitation_mask=dict(type='ImitationMask', psi=0.5))
    ...
    mask=dict(from_student=True, recorder='imitation_mask', data_idx=0)
"""
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmrazor.models.task_modules.recorder import ModuleOutputsRecorder
from mmrazor.registry import TASK_UTILS

from ...ops import (featmap_sizes_for, gt_box_masks, imitation_masks,
                    mask_cells)
from ..utils.anchors import anchors_from_model, as_anchor_tensors
from ..utils.ground_truth import gt_bboxes_from_data_samples

__all__ = ['ImitationMaskRecorder']

MODES = ('anchor', 'gt_box', 'full')


@TASK_UTILS.register_module()
class ImitationMaskRecorder(ModuleOutputsRecorder):
    """Record a detector's inputs and give its imitation masks per level.

    Args:
        source (str): The detector module whose forward inputs are
            ``(batch_inputs, data_samples)``. Defaults to '' (the model the
            recorder is prepared from, i.e. the student).
        psi (float): Threshold factor in (0, 1]. Defaults to 0.5.
        joint (bool): Take each box's best IoU over all levels (True) or per
            level (False). Defaults to True.
        base_anchors (list, optional): Anchor (w, h) per level. Defaults to
            None: read from the detector's prior generator.
        strides (list, optional): Stride (int or (sx, sy)) per level.
            Defaults to None: read from the detector's prior generator.
        levels (Sequence[int], optional): Which levels of the prior generator
            are imitated, in the order of ``data_idx``. Defaults to all.
        head (str, optional): Head attribute holding the prior generator.
            Defaults to ``bbox_head``, then ``rpn_head``.
        anchor_templates (dict, optional): ``scales`` and ``ratios`` of the
            anchor templates of an anchor-free head (point generator): per
            level, boxes of side ``scale * stride`` and aspect ratios h/w.
            Defaults to None: ``dict(scales=(4.0,), ratios=(0.5, 1.0,
            2.0))``. Not used when the head has anchors.
        center_offset (float, optional): Anchor centres at ``(j + offset) *
            stride``. Defaults to None: read from the prior generator, or
            0.5 (cell centres) with explicit ``base_anchors``.
        mode (str): 'anchor' (the paper's mask), 'gt_box' (cells inside
            boxes) or 'full' (every cell), the last two for the paper's
            ablations. Defaults to 'anchor'.
    """

    def __init__(self,
                 source: str = '',
                 psi: float = 0.5,
                 joint: bool = True,
                 base_anchors: Optional[Sequence] = None,
                 strides: Optional[Sequence] = None,
                 levels: Optional[Sequence[int]] = None,
                 head: Optional[str] = None,
                 mode: str = 'anchor',
                 anchor_templates: Optional[dict] = None,
                 center_offset: Optional[float] = None) -> None:
        super().__init__(source)
        if not (isinstance(psi, (int, float)) and 0 < psi <= 1):
            raise ValueError(
                f'ImitationMaskRecorder: psi must be in (0, 1], got {psi!r}')
        if mode not in MODES:
            raise ValueError(f'ImitationMaskRecorder: mode must be one of '
                             f'{MODES}, got {mode!r}')
        if (base_anchors is None) != (strides is None):
            raise ValueError('ImitationMaskRecorder: give both base_anchors '
                             'and strides, or neither (to read them from '
                             "the detector's prior generator)")
        if base_anchors is not None and len(base_anchors) != len(strides):
            raise ValueError(
                f'ImitationMaskRecorder: {len(base_anchors)} anchor sets but '
                f'{len(strides)} strides; give one of each per level')
        if anchor_templates is not None and base_anchors is not None:
            raise ValueError('ImitationMaskRecorder: give anchor_templates '
                             '(scaled to the strides of an anchor-free '
                             'head) or base_anchors, not both')
        self.psi = float(psi)
        self.joint = joint
        self.anchor_templates = anchor_templates
        self.center_offset = center_offset
        self.mode = mode
        self.head = head
        self.levels = list(levels) if levels is not None else None
        self.base_anchors: Optional[List[Tensor]] = (
            as_anchor_tensors(base_anchors)
            if base_anchors is not None else None)
        self.strides: Optional[List[Any]] = (
            list(strides) if strides is not None else None)
        self._cache: dict = {}
        self._cells: dict = {}
        self._primed: Optional[tuple] = None

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        """Hook the detector and, if not given, read its anchors."""
        if model is None:
            raise ValueError('ImitationMaskRecorder needs a model')
        try:
            detector = model.get_submodule(self.source)
        except AttributeError:
            raise ValueError(
                f'ImitationMaskRecorder: source {self.source!r} is not a '
                f'module of {type(model).__name__}') from None
        detector.register_forward_pre_hook(self.forward_pre_hook)
        if self.base_anchors is None:
            anchors, strides, offset = anchors_from_model(
                detector, self.head, self.levels, self.anchor_templates)
            self.base_anchors, self.strides = anchors, strides
            if self.center_offset is None:
                self.center_offset = offset
        elif self.levels is not None:
            self.base_anchors = [self.base_anchors[i] for i in self.levels]
            self.strides = [self.strides[i] for i in self.levels]
        if self.center_offset is None:
            self.center_offset = 0.5

    def forward_pre_hook(self, module: nn.Module, inputs: Tuple) -> None:
        """Record the input shape and a copy of the boxes, before forward.

        Records ``(batch_inputs, gt_bboxes)`` with ``gt_bboxes`` a list of
        (N_b, 4) tensors.
        """
        if not self.recording:
            return
        if len(inputs) < 2:
            raise ValueError(
                'ImitationMaskRecorder: the detector was called without '
                'data_samples; the mask needs the ground truth (training '
                'mode="loss")')
        batch_inputs, data_samples = inputs[0], inputs[1]
        primed, self._primed = self._primed, None
        if primed is not None and primed[0] is batch_inputs and \
                primed[1] is data_samples:
            self.data_buffer.append((batch_inputs, primed[2]))
            index = len(self.data_buffer) - 1
            self._cache[index] = primed[3]
            if primed[4] is not None:
                self._cells[index] = primed[4]
            return
        self.data_buffer.append(
            (batch_inputs, self._copy_boxes(batch_inputs, data_samples)))

    @staticmethod
    def _copy_boxes(batch_inputs: Tensor, data_samples: Any) -> List[Tensor]:
        boxes = gt_bboxes_from_data_samples(data_samples,
                                            batch_inputs.shape[0])
        return [b.detach().clone() for b in boxes]

    def prime(self, batch_inputs: Tensor, data_samples: Any,
              cells: bool = True) -> int:
        """Compute the masks of the batch that the detector is about to be
        called with, and (``cells``) their cells (:meth:`get_record_cells`,
        else found when first read), before any forward.

        The next forward with these very ``batch_inputs`` and
        ``data_samples`` objects records them instead of computing them
        again; any other call is recorded as usual.

        Returns:
            int: The number of ground-truth boxes in the batch (from the
            boxes' shapes: no wait for the device).
        """
        boxes = self._copy_boxes(batch_inputs, data_samples)
        masks = self.compute_masks(batch_inputs, boxes)
        self._primed = (batch_inputs, data_samples, boxes, masks,
                        mask_cells(masks) if cells else None)
        return sum(int(b.shape[0]) for b in boxes)

    def forward_hook(self, module: nn.Module, inputs: Tuple,
                     outputs: Any) -> None:
        """Nothing is recorded after the forward (see the pre-hook)."""

    def reset_data_buffer(self) -> None:
        """Clear the records and the masks computed from them."""
        super().reset_data_buffer()
        self._cache = {}
        self._cells = {}

    def get_record_data(self,
                        record_idx: int = 0,
                        data_idx: Optional[int] = None) -> Any:
        """The masks of one recorded forward.

        Args:
            record_idx (int): Which forward of the detector (0: the first).
            data_idx (int, optional): Level index. None returns the list of
                all levels.

        Returns:
            Tensor | list[Tensor]: BoolTensor (B, H_l, W_l), or all levels.
        """
        if record_idx not in self._cache:
            inputs = super().get_record_data(record_idx)
            self._cache[record_idx] = self.compute_masks(*inputs[:2])
        masks = self._cache[record_idx]
        if data_idx is None:
            return masks
        if not 0 <= data_idx < len(masks):
            raise IndexError(
                f'ImitationMaskRecorder: data_idx={data_idx} but the '
                f'recorder makes masks for {len(masks)} levels')
        return masks[data_idx]

    def get_record_cells(self,
                         record_idx: int = 0) -> List[Tuple[Tensor, ...]]:
        """The masked cells ``(b, i, j)`` of every level of one recorded
        forward (``torch.nonzero(mask, as_tuple=True)`` per level), found
        with one wait for the device for all levels."""
        if record_idx not in self._cells:
            self._cells[record_idx] = mask_cells(
                self.get_record_data(record_idx))
        return self._cells[record_idx]

    @torch.no_grad()
    def compute_masks(self, batch_inputs: Tensor,
                      gt_bboxes: Any) -> List[Tensor]:
        """Masks of all levels for one batch.

        Args:
            batch_inputs (Tensor): (B, C, H, W) padded input batch.
            gt_bboxes (list[Tensor] | Any): Per-image (N_b, 4) boxes, or
                mmdet's ``list[DetDataSample]`` / mmyolo's packed dict.

        Returns:
            list[Tensor]: BoolTensor (B, H_l, W_l) per level.
        """
        if self.strides is None:
            raise RuntimeError('ImitationMaskRecorder used before it was '
                               'prepared from a model')
        num_imgs = batch_inputs.shape[0]
        sizes = featmap_sizes_for(batch_inputs.shape[-2:], self.strides)
        device = batch_inputs.device
        if self.mode == 'full':
            return [
                torch.ones(num_imgs, h, w, dtype=torch.bool, device=device)
                for h, w in sizes
            ]
        if not (isinstance(gt_bboxes, (list, tuple)) and all(
                isinstance(b, Tensor) for b in gt_bboxes)):
            gt_bboxes = gt_bboxes_from_data_samples(gt_bboxes, num_imgs)
        gt_bboxes = [b.to(device) for b in gt_bboxes]
        if self.mode == 'gt_box':
            return gt_box_masks(gt_bboxes, sizes, self.strides,
                                self.center_offset)
        # The anchors stay on the CPU: imitation_masks copies them to the
        # device once and keeps them there.
        return imitation_masks(
            gt_bboxes,
            sizes,
            self.strides,
            self.base_anchors,
            psi=self.psi,
            joint=self.joint,
            center_offset=self.center_offset)
