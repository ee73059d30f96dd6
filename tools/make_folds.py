"""K folds of a COCO-format dataset, by image or by image group.

    python tools/make_folds.py data/my/annotations.json --k 5 \
        [--group-regex '^(scene_\\d+)_'] [--out data/my/folds]

Writes ``<out>/<fold>/train.json`` and ``val.json`` (the source's file
names, so configs change only their ``ann_file``) and ``folds.json``;
``tools/compare_methods.py --fold-dir <out> --folds 0 1 ...`` uses them.
With ``--group-regex`` all images whose file names give the same match
(its first group, or the whole match) share a fold: the tiles of one
scene are never split between train and val.
"""
import argparse
import json
import os.path as osp

from fgd_mmrazor.experiments.folds import make_folds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ann_file', help='a COCO annotation file')
    parser.add_argument('--k', type=int, default=5, help='folds')
    parser.add_argument('--group-regex',
                        help='images whose file names give the same match '
                        'share a fold')
    parser.add_argument('--out', help='output folder (default: folds/ '
                        'beside the annotation file)')
    parser.add_argument('--seed', type=int, default=0,
                        help='shuffle of groups of equal size')
    args = parser.parse_args()
    out = args.out or osp.join(osp.dirname(osp.abspath(args.ann_file)),
                               'folds')
    summary = make_folds(args.ann_file, out, args.k, args.group_regex,
                         args.seed)
    print(json.dumps({f: dict(val_groups=len(r['groups']),
                              train=r['train']['images'],
                              val=r['val']['images'])
                      for f, r in summary['folds'].items()}, indent=2))


if __name__ == '__main__':
    main()
