"""The imitation masks of a config on real images: its mask settings, the
boxes of a COCO file, per-dataset statistics and the per-cell
teacher-student distance (``tools/visualize_masks.py``,
``tools/analyze_masks.py`` and the demo's mask figure)."""
import contextlib
import io
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..engine.cli_config import is_distill_cfg
from .models import build_algorithm, build_detector, load_config

__all__ = [
    'MaskSetup', 'load_coco_boxes', 'pad_to', 'mask_statistics',
    'feature_distance'
]


def pad_to(image: np.ndarray, divisor: int = 32) -> np.ndarray:
    """Pad (bottom/right, value 114) to a multiple of ``divisor``, like the
    demo's test pipeline."""
    h, w = image.shape[:2]
    ph, pw = -(-h // divisor) * divisor, -(-w // divisor) * divisor
    out = np.full((ph, pw, 3), 114, np.uint8)
    out[:h, :w] = image
    return out


def load_coco_boxes(ann_file: str) -> Tuple[Dict[str, dict], Dict[int, list]]:
    """Images by file name and xyxy boxes by image id of a COCO file (read
    with pycocotools)."""
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
        coco = COCO(ann_file)
    images = {
        osp.basename(i['file_name']): i
        for i in coco.dataset['images']
    }
    boxes: Dict[int, list] = {}
    for img_id in coco.getImgIds():
        boxes[img_id] = [[x, y, x + w, y + h]
                         for x, y, w, h in (a['bbox']
                                            for a in coco.imgToAnns[img_id])]
    return images, boxes


class MaskSetup:
    """Anchors, strides, psi and joint of a config's imitation mask.

    For a distillation config they come from its ``ImitationMask`` recorder
    and its student; for a plain detector config from the detector's prior
    generator with psi 0.5, joint. ``teacher_ckpt`` loads the teacher of a
    distillation config (checkpoints of the algorithm do not hold it).
    """

    def __init__(self, config: str, teacher_ckpt: Optional[str] = None):
        from ..models.utils import anchors_from_model
        self.cfg = load_config(config)
        self.psi, self.joint, self.center_offset = 0.5, True, 0.5
        if is_distill_cfg(self.cfg):
            self.model = build_algorithm(self.cfg, teacher_ckpt)
            rec = self.model.distiller.mask_recorder
            if rec is None:
                raise ValueError(f'{config} has no imitation mask (its '
                                 'distiller has mask=None)')
            self.psi, self.joint = rec.psi, rec.joint
            self.center_offset = rec.center_offset
            self.anchors, self.strides = rec.base_anchors, rec.strides
            self.detector = self.model.student
        else:
            self.model = self.detector = build_detector(self.cfg)
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
        from ..ops import featmap_sizes_for, imitation_masks
        return imitation_masks(
            boxes,
            featmap_sizes_for(input_hw, self.strides),
            self.strides,
            self.anchors,
            psi=self.psi if psi is None else psi,
            joint=self.joint,
            center_offset=self.center_offset)


def mask_statistics(setup: MaskSetup, images: Dict[str, dict],
                    boxes: Dict[int, list],
                    psis: Sequence[float]) -> Dict[float, dict]:
    """Per psi, over the images at their padded size: the share of cells
    masked per level (``coverage``), the number of boxes, those without a
    mask cell on any level, and the quartiles of the cells per box."""
    out = {}
    for psi in psis:
        cells, covered, per_box, empty_boxes, total_boxes = None, None, [], \
            0, 0
        for info in images.values():
            b = torch.tensor(boxes.get(info['id'], []),
                             dtype=torch.float32).reshape(-1, 4)
            hw = (-(-info['height'] // 32) * 32, -(-info['width'] // 32) * 32)
            union = setup.masks([b], hw, psi)
            if cells is None:
                cells = np.zeros(len(union))
                covered = np.zeros(len(union))
            for lvl, m in enumerate(union):
                cells[lvl] += m.numel()
                covered[lvl] += float(m.sum())
            if len(b):
                # one "image" per box: its own cells (the union's parts)
                own = setup.masks(list(b[:, None]), hw, psi)
                counts = sum(m.flatten(1).sum(1) for m in own)
                per_box.extend(counts.tolist())
                empty_boxes += int((counts == 0).sum())
                total_boxes += len(b)
        out[psi] = dict(
            coverage=(covered / cells).tolist(),
            boxes=total_boxes,
            boxes_without_cells=empty_boxes,
            cells_per_box=np.percentile(per_box, [0, 25, 50, 75, 100]).tolist()
            if per_box else [])
    return out


@torch.no_grad()
def feature_distance(model, padded: np.ndarray) -> List[torch.Tensor]:
    """Per-cell ``sum_c (adapt(s) - t)^2`` of each level of a distillation
    algorithm on one (padded, HWC uint8) image."""
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float()
    data = model.data_preprocessor(
        dict(inputs=[x[0].to(torch.uint8)], data_samples=None), False)
    inputs = data['inputs']
    model.eval()
    distiller = model.distiller
    out = []
    with distiller.teacher_recorders, distiller.student_recorders:
        model.teacher.extract_feat(inputs)
        model.student.extract_feat(inputs)
        for name in distiller.level_names:
            student, teacher = distiller.features(name)
            adapter = distiller.adapter(name)
            if adapter is not None:
                student = adapter(student)
            out.append(((student - teacher)**2).sum(1)[0])
    return out
