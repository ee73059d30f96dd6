"""Convert TensorFlow's frozen MobileNetV2 to an mmdet MobileNetV2 checkpoint.

    python tools/convert_tf_mobilenetv2.py frozen_inference_graph.pb \
        mobilenetv2_coco.pth [--prefix backbone.] [--check IMG ...]

Reads the ``Const`` nodes under ``FeatureExtractor/MobilenetV2/`` of a
frozen GraphDef (e.g. TensorFlow's ``ssd_mobilenet_v2_coco_2018_03_29``)
and writes ``{'state_dict': ..., 'meta': ...}`` for mmdet's
``MobileNetV2(widen_factor=1.0)`` (``fgd_mmrazor/convert/tf_mobilenetv2.py``
has the name and layout mapping). Build the model with
``norm_cfg=dict(type='BN', eps=1e-3)``: the graph's BatchNorm epsilon,
which the tool prints. ``--prefix backbone.`` writes keys a detector's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` or
``load_from`` can read.

``--check IMG ...`` runs the converted backbone on the images (resized to
``--check-size``, scaled to [-1, 1] as the TensorFlow model was trained)
and prints, per BatchNorm layer, how far the mean of its input lies from
the stored moving mean, in moving standard deviations (and their
correlation over channels): small when kernels and statistics were
converted in the right layout (``bn_input_statistics``).
"""
import argparse
import os.path as osp

import numpy as np
import torch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='frozen GraphDef (.pb)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--prefix', default='',
                        help="key prefix, e.g. 'backbone.'")
    parser.add_argument('--check', nargs='+', metavar='IMG',
                        help='images for the BatchNorm statistics check')
    parser.add_argument('--check-size', type=int, default=320)
    return parser.parse_args()


def check_images(paths, size):
    from PIL import Image
    batch = []
    for path in paths:
        img = Image.open(path).convert('RGB').resize((size, size))
        batch.append(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
    return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()


def main():
    args = parse_args()
    from fgd_mmrazor.convert import (bn_input_statistics, graph_bn_epsilon,
                                     mobilenetv2_state_dict,
                                     read_graph_constants)
    consts = read_graph_constants(args.src)
    eps = graph_bn_epsilon(consts)
    state = mobilenetv2_state_dict(consts, prefix=args.prefix)
    meta = dict(source=osp.basename(args.src), bn_eps=eps,
                converter='tools/convert_tf_mobilenetv2.py')
    torch.save({'state_dict': state, 'meta': meta}, args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors, BatchNorm eps {eps:g}')
    if args.check:
        from mmdet.models.backbones import MobileNetV2
        model = MobileNetV2(out_indices=(7, ),
                            norm_cfg=dict(type='BN', eps=eps))
        model.load_state_dict({k[len(args.prefix):]: v
                               for k, v in state.items()}, strict=True)
        rows = bn_input_statistics(model, check_images(args.check,
                                                       args.check_size))
        print('| layer | corr(input mean, moving mean) | mean shift / '
              'moving std |')
        print('| --- | --- | --- |')
        for name, corr, z in rows:
            print(f'| {name} | {corr:.3f} | {z:.2f} |')
        z = np.array([r[2] for r in rows])
        print(f'{len(rows)} BatchNorm layers: shift median {np.median(z):.2f}'
              f', max {z.max():.2f} moving stds')


if __name__ == '__main__':
    main()
