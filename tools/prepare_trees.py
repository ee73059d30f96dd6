"""Prepare the demo's tiled COCO tree data (idempotent, cached).

    python tools/prepare_trees.py [--out data/trees] [--force]

See ``fgd_mmrazor/demo/trees.py`` for the split and the tiling.
"""
import argparse
import json
import os.path as osp

from fgd_mmrazor.demo.trees import prepare_trees

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(REPO, 'data', 'trees'))
    parser.add_argument('--wheel', help='a local deepforest wheel')
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args()
    manifest = prepare_trees(args.out, wheel=args.wheel, force=args.force)
    print(json.dumps(manifest['counts']))


if __name__ == '__main__':
    main()
