"""Shared code of ``tools/visualize_masks.py`` and ``tools/analyze_masks.py``:
the mask settings of a config and the boxes of a COCO annotation file."""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config

__all__ = ['MaskSetup', 'load_coco_boxes', 'pad_to']


def pad_to(image: np.ndarray, divisor: int = 32) -> np.ndarray:
    """Pad (bottom/right, value 114) to a multiple of ``divisor``, like the
    demo's test pipeline."""
    h, w = image.shape[:2]
    ph, pw = -(-h // divisor) * divisor, -(-w // divisor) * divisor
    out = np.full((ph, pw, 3), 114, np.uint8)
    out[:h, :w] = image
    return out


def load_coco_boxes(ann_file: str) -> Tuple[Dict[str, dict], Dict[int, list]]:
    """Images by file name and xyxy boxes by image id of a COCO file."""
    with open(ann_file) as f:
        coco = json.load(f)
    images = {osp.basename(i['file_name']): i for i in coco['images']}
    boxes: Dict[int, list] = {i['id']: [] for i in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        boxes.setdefault(a['image_id'], []).append([x, y, x + w, y + h])
    return images, boxes


class MaskSetup:
    """Anchors, strides, psi and joint of a config's imitation mask.

    For a distillation config they come from its ``ImitationMask`` recorder
    and its student; for a plain detector config from the detector's prior
    generator with psi 0.5, joint. ``teacher_ckpt`` loads the teacher of a
    distillation config (checkpoints of the algorithm do not hold it).
    """

    def __init__(self, config: str, teacher_ckpt: Optional[str] = None):
        import fgd_mmrazor  # noqa: F401
        from mmengine.registry import init_default_scope
        from mmrazor.registry import MODELS as RAZOR

        from fgd_mmrazor.apis import is_distill_cfg
        from fgd_mmrazor.models.utils import anchors_from_model
        self.cfg = Config.fromfile(config)
        init_default_scope(self.cfg.get('default_scope', 'mmyolo'))
        self.psi, self.joint, self.center_offset = 0.5, True, 0.5
        if is_distill_cfg(self.cfg):
            self.cfg.model.teacher_ckpt_required = False
            self.cfg.model.teacher_ckpt = teacher_ckpt
            self.model = RAZOR.build(self.cfg.model)
            rec = self.model.distiller.student_recorders.recorders.get(
                'imitation_mask')
            if rec is None:
                raise ValueError(f'{config} has no imitation_mask recorder')
            self.psi, self.joint = rec.psi, rec.joint
            self.center_offset = rec.center_offset
            self.anchors, self.strides = rec.base_anchors, rec.strides
            self.detector = self.model.student
        else:
            from mmyolo.registry import MODELS
            self.model = self.detector = MODELS.build(self.cfg.model)
            self.anchors, self.strides, self.center_offset = \
                anchors_from_model(self.detector)

    def load_boxes(self, ann_file=None):
        """Images and boxes of ``ann_file`` (default: the config's val
        annotations), see :func:`load_coco_boxes`."""
        self.ann_file = ann_file or self.cfg.val_evaluator.ann_file
        return load_coco_boxes(self.ann_file)

    def masks(self, boxes: Sequence[torch.Tensor], input_hw,
              psi=None) -> List[torch.Tensor]:
        """Masks of a batch (one entry of ``boxes`` per image)."""
        from fgd_mmrazor import featmap_sizes_for, imitation_masks
        return imitation_masks(
            boxes,
            featmap_sizes_for(input_hw, self.strides),
            self.strides,
            self.anchors,
            psi=self.psi if psi is None else psi,
            joint=self.joint,
            center_offset=self.center_offset)
