"""MaskedConvConnector, and the distiller's sparse path by contract."""
from unittest import mock

import pytest
import torch

from fgd_mmrazor.models import MaskedConvConnector
from mmrazor.models.architectures.connectors import ConvModuleConnector
from mmrazor.registry import MODELS

from .conftest import three_level_cfg, train_batch

BOXES = torch.tensor([[0., 0., 10., 8., 40., 30.],
                      [0., 0., 50., 20., 90., 60.],
                      [1., 0., 0., 0., 96., 64.]])


def test_defaults_are_the_papers_adaptation_layer():
    conn = MODELS.build(
        dict(_scope_='mmrazor', type='MaskedConvConnector', in_channel=4,
             out_channel=6))
    conv = conn.conv_module.conv
    assert (conv.kernel_size, conv.padding) == ((3, 3), (1, 1))
    assert (conv.in_channels, conv.out_channels) == (4, 6)
    assert not conn.conv_module.with_norm
    assert not conn.conv_module.with_activation
    assert conn.supports_cells
    one = MaskedConvConnector(4, 6, kernel_size=1)
    assert one.conv_module.conv.padding == (0, 0) and one.supports_cells


def test_same_checkpoint_keys_as_conv_module_connector():
    masked = MaskedConvConnector(4, 6)
    # ConvModuleConnector's own default act_cfg is a ReLU
    plain = ConvModuleConnector(4, 6, kernel_size=3, padding=1,
                                act_cfg=None)
    assert masked.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(masked.state_dict())
    x = torch.randn(2, 4, 5, 7)
    torch.testing.assert_close(plain(x), masked(x))


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_forward_cells_equals_the_dense_conv_at_the_cells(kernel_size):
    torch.manual_seed(0)
    conn = MaskedConvConnector(4, 6, kernel_size=kernel_size)
    feature = torch.randn(2, 4, 5, 7)
    mask = torch.rand(2, 5, 7) > 0.7
    cells, (b, i, j) = conn.forward_cells(feature, mask)
    assert torch.equal(torch.stack([b, i, j], 1), torch.nonzero(mask))
    dense = conn(feature).permute(0, 2, 3, 1)[b, i, j]
    assert cells.shape == (int(mask.sum()), 6)
    torch.testing.assert_close(cells, dense, rtol=1e-5, atol=1e-6)


def test_forward_cells_refuses_what_it_cannot_compute():
    with_norm = MaskedConvConnector(4, 6, norm_cfg=dict(type='BN'))
    assert not with_norm.supports_cells
    mask = torch.ones(1, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match='plain same-size conv'):
        with_norm.forward_cells(torch.randn(1, 4, 5, 5), mask)
    assert not MaskedConvConnector(4, 6, padding=0).supports_cells
    with pytest.raises(ValueError, match='fix student_channels'):
        MaskedConvConnector(4, 6).forward_cells(torch.randn(1, 3, 5, 5), mask)


def _imitation_losses(algo):
    algo.train()
    losses = algo(**train_batch(algo, BOXES), mode='loss')
    return {k: v for k, v in losses.items() if 'imitation' in k}


def test_distiller_takes_the_sparse_path_by_contract(teacher_ckpt):
    """The sparse path is taken when the connector and the loss offer
    ``forward_cells``; a plain ConvModuleConnector with the same weights
    takes the dense path and gives the same losses."""
    path, _ = teacher_ckpt
    torch.manual_seed(0)
    algo = MODELS.build(three_level_cfg(path))
    original = MaskedConvConnector.forward_cells
    with mock.patch.object(MaskedConvConnector, 'forward_cells',
                           autospec=True, side_effect=original) as spy:
        sparse = _imitation_losses(algo)
    assert spy.call_count == 3  # one per level
    assert sum(float(v) for v in sparse.values()) > 0

    cfg = three_level_cfg(path)
    cfg['distiller']['connector'] = dict(
        type='ConvModuleConnector', kernel_size=3, padding=1, act_cfg=None)
    plain = MODELS.build(cfg)
    assert not hasattr(plain.distiller.adapter('level0'), 'forward_cells')
    plain.load_state_dict(algo.state_dict())
    with mock.patch.object(MaskedConvConnector, 'forward_cells',
                           autospec=True, side_effect=original) as spy:
        dense = _imitation_losses(plain)
    assert spy.call_count == 0
    assert dense.keys() == sparse.keys()
    for k in dense:
        torch.testing.assert_close(sparse[k], dense[k], rtol=1e-5,
                                   atol=1e-7)


def test_a_connector_that_cannot_compute_cells_takes_the_dense_path(
        teacher_ckpt):
    path, _ = teacher_ckpt
    cfg = three_level_cfg(path)
    cfg['distiller']['connector'] = dict(
        type='MaskedConvConnector', norm_cfg=dict(type='BN'))
    algo = MODELS.build(cfg)
    with mock.patch.object(MaskedConvConnector, 'forward_cells',
                           autospec=True) as spy:
        losses = _imitation_losses(algo)
    assert spy.call_count == 0
    assert all(torch.isfinite(v) for v in losses.values())
