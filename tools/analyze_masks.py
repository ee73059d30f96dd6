"""Statistics of the imitation masks over a dataset, to choose psi.

    python tools/analyze_masks.py CONFIG [--ann FILE] [--psi 0.3 0.5 0.7]

For every image of the annotation file (default: the config's val set) at
its padded native input size: per-level mask coverage (fraction of cells),
the boxes that get no mask cell on any level, and the distribution of mask
cells per box, for each psi. Masks use the config's anchors, strides and
joint setting (``fgd_mmrazor.analysis.masks``).
"""
import argparse
import os.path as osp

from fgd_mmrazor.analysis.masks import MaskSetup, mask_statistics


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--ann', help='COCO annotation file (default: the '
                        "config's val_evaluator.ann_file)")
    parser.add_argument('--psi', type=float, nargs='+',
                        default=[0.3, 0.5, 0.7])
    return parser.parse_args()


def main():
    args = parse_args()
    setup = MaskSetup(args.config)
    images, boxes = setup.load_boxes(args.ann)
    stats = mask_statistics(setup, images, boxes, args.psi)
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
