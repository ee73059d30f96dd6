"""Mask statistics over a COCO file (fgd_mmrazor.analysis.masks)."""
import os.path as osp

from ..conftest import CONFIGS

DISTILL = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')


def test_analyze_masks_statistics(tiny_coco):
    from fgd_mmrazor.analysis.masks import (MaskSetup, load_coco_boxes,
                                            mask_statistics)
    setup = MaskSetup(DISTILL)
    images, boxes = load_coco_boxes(osp.join(tiny_coco, 'annotations.json'))
    stats = mask_statistics(setup, images, boxes, [0.3, 0.5, 0.9])
    n_boxes = sum(len(v) for v in boxes.values())
    assert stats[0.5]['boxes'] == n_boxes > 0
    total = [sum(stats[p]['coverage']) for p in (0.3, 0.5, 0.9)]
    assert total[0] >= total[1] >= total[2] > 0  # monotonic in psi
    assert stats[0.3]['cells_per_box'][2] >= stats[0.9]['cells_per_box'][2]
    assert stats[0.5]['boxes_without_cells'] == 0
