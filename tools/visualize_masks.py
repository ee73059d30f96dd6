"""Draw the imitation masks of images over the images and their boxes.

    python tools/visualize_masks.py CONFIG --images a.png b.png --out DIR \
        [--ann FILE] [--checkpoint CKPT --teacher-ckpt T]

One PNG per image in DIR: the (padded, native-resolution) image with its
ground-truth boxes (from the COCO file ``--ann``, default the config's val
annotations, matched by file name) and each level's mask as an overlay.
With ``--checkpoint`` (a checkpoint of the distillation CONFIG) a second
row shows the per-cell teacher-student distance
``sum_c (adapt(s) - t)^2`` of each level; the teacher comes from
``--teacher-ckpt`` (the config's ``teacher_ckpt`` by default), since
distillation checkpoints do not hold it.
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
from PIL import Image

from fgd_mmrazor.analysis.masks import MaskSetup, feature_distance, pad_to
from fgd_mmrazor.demo.report import plot_masks


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--images', nargs='+', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--ann', help='COCO annotation file with the boxes')
    parser.add_argument('--checkpoint', help='distillation checkpoint')
    parser.add_argument('--teacher-ckpt',
                        help="the teacher's checkpoint (default: the "
                        "config's model.teacher_ckpt)")
    return parser.parse_args()


def main():
    args = parse_args()
    teacher_ckpt = args.teacher_ckpt
    if args.checkpoint and teacher_ckpt is None:
        from mmengine.config import Config
        teacher_ckpt = Config.fromfile(args.config).model.get('teacher_ckpt')
        if teacher_ckpt is None:
            raise SystemExit('--checkpoint needs the teacher: pass '
                             '--teacher-ckpt (checkpoints do not hold it)')
    setup = MaskSetup(args.config, teacher_ckpt=teacher_ckpt)
    images, boxes = setup.load_boxes(args.ann)
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(setup.model, args.checkpoint, map_location='cpu')
    os.makedirs(args.out, exist_ok=True)
    for path in args.images:
        info = images.get(osp.basename(path))
        b = np.asarray(boxes.get(info['id'], []) if info else [],
                       dtype=np.float32).reshape(-1, 4)
        padded = pad_to(np.asarray(Image.open(path).convert('RGB')))
        masks = setup.masks([torch.from_numpy(b)], padded.shape[:2])
        out = osp.join(args.out, osp.splitext(osp.basename(path))[0] + '.png')
        title = (f'{osp.basename(path)}: {len(b)} boxes, psi={setup.psi}, '
                 f'joint={setup.joint}')
        plot_masks(padded, b, [m[0] for m in masks], setup.strides, out,
                   title=title)
        if args.checkpoint:
            dists = feature_distance(setup.model, padded)
            dist_out = out[:-4] + '_distance.png'
            plot_masks(padded, b, dists, setup.strides, dist_out,
                       title=title + ' - teacher-student distance')
        print(f'wrote {out}')


if __name__ == '__main__':
    main()
