"""TensorFlow MobileNetV2 (a frozen GraphDef) to mmdet's ``MobileNetV2``.

TensorFlow's object-detection models freeze their weights into the graph
as ``Const`` nodes. The MobileNetV2 feature extractor of, e.g.,
``ssd_mobilenet_v2_coco_2018_03_29`` keeps its BatchNorm unfused, under
``FeatureExtractor/MobilenetV2/``:

==================================================  =========================
TensorFlow constant                                 mmdet ``MobileNetV2`` key
==================================================  =========================
``Conv/weights``                                    ``conv1.conv.weight``
``Conv/BatchNorm/{gamma,beta,moving_*}``            ``conv1.bn.*``
``expanded_conv[_i]/expand/...``                    ``layerL.j.expand_conv.*``
``expanded_conv[_i]/depthwise/depthwise_weights``   ``layerL.j.depthwise_conv``
``expanded_conv[_i]/project/...``                   ``layerL.j.linear_conv.*``
``Conv_1/...``                                      ``conv2.*``
==================================================  =========================

Block ``i`` (``expanded_conv`` is 0) is the ``i``-th inverted residual
block in mmdet's order (stages of 1, 2, 3, 4, 3, 3, 1 blocks). Layouts:
conv kernels are HWIO (to OIHW), depthwise kernels H W C 1 (to C 1 H W);
BatchNorm's ``gamma``/``beta``/``moving_mean``/``moving_variance`` become
``weight``/``bias``/``running_mean``/``running_var``. TensorFlow's BN
epsilon is 1e-3 (set ``norm_cfg=dict(type='BN', eps=1e-3)`` on the
model). TensorFlow pads its stride-2 convolutions on one side ('SAME')
where mmdet pads both sides: a half-pixel shift that fine-tuning absorbs.

The GraphDef is parsed with TensorFlow's own protocol-buffer schema as
``tensorboard`` ships it compiled (``tensorboard.compat.proto``), and the
tensors are read with its ``tensor_util``: no TensorFlow needed.
"""
from collections import OrderedDict
from typing import Dict, Iterator, List, Tuple

import numpy as np
import torch

__all__ = [
    'read_graph_constants', 'mobilenetv2_state_dict', 'graph_bn_epsilon',
    'bn_input_statistics', 'MMDET_STAGES', 'TF_PREFIX'
]

TF_PREFIX = 'FeatureExtractor/MobilenetV2/'
#: Blocks per stage of mmdet's MobileNetV2 (``arch_settings``).
MMDET_STAGES = (1, 2, 3, 4, 3, 3, 1)
_BN = (('gamma', 'weight'), ('beta', 'bias'), ('moving_mean', 'running_mean'),
       ('moving_variance', 'running_var'))


def read_graph_constants(path: str, prefix: str = TF_PREFIX
                         ) -> Dict[str, np.ndarray]:
    """The ``Const`` tensors of a frozen GraphDef whose names start with
    ``prefix``, by name without the prefix."""
    from tensorboard.compat.proto import graph_pb2
    from tensorboard.util import tensor_util
    graph = graph_pb2.GraphDef()
    with open(path, 'rb') as f:
        graph.ParseFromString(f.read())
    out = {}
    for node in graph.node:
        if node.op == 'Const' and node.name.startswith(prefix):
            out[node.name[len(prefix):]] = tensor_util.make_ndarray(
                node.attr['value'].tensor)
    if not out:
        raise ValueError(f'{path}: no constant under {prefix!r}; is it a '
                         'frozen TensorFlow MobileNetV2 graph?')
    return out


def _block_names() -> Iterator[Tuple[str, str]]:
    """(TensorFlow scope, mmdet module) of every inverted residual."""
    index = 0
    for stage, blocks in enumerate(MMDET_STAGES):
        for j in range(blocks):
            scope = 'expanded_conv' + (f'_{index}' if index else '')
            yield scope, f'layer{stage + 1}.{j}'
            index += 1


LayerName = Tuple[str, str, bool]


def _layer_names(consts: Dict[str, np.ndarray]) -> List[LayerName]:
    """(TensorFlow scope, mmdet ConvModule, depthwise) in network order."""
    names = [('Conv', 'conv1', False)]
    for scope, module in _block_names():
        if f'{scope}/expand/weights' in consts:
            names.append((f'{scope}/expand', f'{module}.expand_conv', False))
        names.append((f'{scope}/depthwise', f'{module}.depthwise_conv', True))
        names.append((f'{scope}/project', f'{module}.linear_conv', False))
    names.append(('Conv_1', 'conv2', False))
    return names


def mobilenetv2_state_dict(consts: Dict[str, np.ndarray],
                           prefix: str = '') -> 'OrderedDict':
    """mmdet ``MobileNetV2`` weights (keys under ``prefix``, e.g.
    ``'backbone.'``) from the constants of :func:`read_graph_constants`.

    Raises:
        KeyError: A layer's kernel or BatchNorm tensor is missing.
    """
    state = OrderedDict()
    for scope, module, depthwise in _layer_names(consts):
        kernel_name = f'{scope}/depthwise_weights' if depthwise else \
            f'{scope}/weights'
        if kernel_name not in consts:
            raise KeyError(f'{kernel_name} is not in the graph')
        kernel = consts[kernel_name]
        # HWIO -> OIHW; depthwise H W C 1 -> C 1 H W
        kernel = kernel.transpose(2, 3, 0, 1) if depthwise else \
            kernel.transpose(3, 2, 0, 1)
        state[f'{prefix}{module}.conv.weight'] = torch.from_numpy(
            np.ascontiguousarray(kernel, dtype=np.float32))
        for tf_name, torch_name in _BN:
            name = f'{scope}/BatchNorm/{tf_name}'
            if name not in consts:
                raise KeyError(f'{name} is not in the graph')
            state[f'{prefix}{module}.bn.{torch_name}'] = torch.from_numpy(
                np.ascontiguousarray(consts[name], dtype=np.float32))
        state[f'{prefix}{module}.bn.num_batches_tracked'] = torch.tensor(0)
    return state


def graph_bn_epsilon(consts: Dict[str, np.ndarray]) -> float:
    """The BatchNorm epsilon frozen into the graph (``batchnorm/add/y``)."""
    values = {
        round(float(v), 9)
        for k, v in consts.items() if k.endswith('BatchNorm/batchnorm/add/y')
    }
    if len(values) != 1:
        raise ValueError(f'expected one BatchNorm epsilon, found {values}')
    return values.pop()


@torch.no_grad()
def bn_input_statistics(backbone: torch.nn.Module,
                        images: torch.Tensor) -> List[Tuple[str, float,
                                                            float]]:
    """Per BatchNorm layer: how its input on ``images`` matches the
    statistics it stores.

    Returns ``(name, corr, z)``: ``corr`` is the correlation over channels
    between the mean of the layer's input and its ``running_mean`` (near 1
    where the stored means vary across channels), ``z`` the mean over
    channels of ``|mean - running_mean| / sqrt(running_var)``, the shift in
    stored standard deviations (well below 1 when kernels and statistics
    were converted in the right layout, even where the stored means are all
    near 0, as after TensorFlow's bias-free linear bottlenecks; kernels on
    the wrong layer or with their channels mixed up shift it by more).
    Channel means cannot see a spatial flip of a kernel (the mean of a
    convolution depends on the kernel's sum only): the layouts themselves
    are checked on known weights by tests/test_convert.
    """
    rows, handles = [], []

    def hook(name):

        def fn(module, inputs, output):
            mean = inputs[0].mean(dim=(0, 2, 3)).double()
            ref = module.running_mean.double()
            corr = torch.corrcoef(torch.stack([mean, ref]))[0, 1]
            z = ((mean - ref).abs() /
                 module.running_var.double().add(module.eps).sqrt()).mean()
            rows.append((name, float(corr), float(z)))

        return fn

    for name, module in backbone.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            handles.append(module.register_forward_hook(hook(name)))
    mode = backbone.training
    backbone.eval()
    try:
        backbone(images)
    finally:
        backbone.train(mode)
        for h in handles:
            h.remove()
    return rows
