"""Statistics of the imitation masks over a dataset, to choose psi.

    python tools/analyze_masks.py CONFIG [--ann FILE] [--psi 0.3 0.5 0.7]

For every image of the annotation file (default: the config's val set) at
its padded native input size: per-level mask coverage (fraction of cells),
the boxes that get no mask cell on any level, and the distribution of mask
cells per box, for each psi. Masks use the config's anchors, strides and
joint setting (see ``fgd_mmrazor/demo/mask_tools.py``).
"""
import argparse
import os.path as osp

import numpy as np
import torch

from fgd_mmrazor.demo.mask_tools import MaskSetup


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--ann', help='COCO annotation file (default: the '
                        "config's val_evaluator.ann_file)")
    parser.add_argument('--psi', type=float, nargs='+',
                        default=[0.3, 0.5, 0.7])
    return parser.parse_args()


def analyze(setup, images, boxes, psis):
    """Dict of statistics per psi."""
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


def main():
    args = parse_args()
    setup = MaskSetup(args.config)
    images, boxes = setup.load_boxes(args.ann)
    stats = analyze(setup, images, boxes, args.psi)
    print(f'{osp.basename(setup.ann_file)}: {len(images)} images, strides '
          f'{setup.strides}, joint={setup.joint}')
    for psi, s in stats.items():
        cov = ', '.join(f'{c:.3f}' for c in s['coverage'])
        q = ', '.join(f'{v:.0f}' for v in s['cells_per_box'])
        print(f'psi={psi}: coverage per level [{cov}]; boxes without a mask '
              f'cell: {s["boxes_without_cells"]}/{s["boxes"]}; mask cells '
              f'per box (min, q1, median, q3, max): [{q}]')


if __name__ == '__main__':
    main()
