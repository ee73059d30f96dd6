"""The adapter evaluated at the masked cells only equals the dense conv
there, values and gradients."""
import pytest
import torch
from torch import nn

from fgd_mmrazor.ops.masked_conv import is_same_size_conv, masked_conv2d_cells


@pytest.mark.parametrize('k', [1, 3, 5])
@pytest.mark.parametrize('keep', [0.4, 0.03])  # more / fewer cells than C_out
def test_masked_cells_equal_the_dense_conv(k, keep):
    torch.manual_seed(k)
    conv = nn.Conv2d(6, 10, k, padding=k // 2).double()
    feat = torch.randn(3, 6, 7, 9, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(3, 7, 9) > 1 - keep
    mask[:, 0, 0] = mask[:, -1, -1] = True  # borders (zero padding)
    mask[1] = False  # an image without cells
    out, (b, i, j) = masked_conv2d_cells(feat, mask, conv)
    assert (len(b) < 10) == (keep < 0.1)  # both weight layouts are used
    dense = conv(feat).permute(0, 2, 3, 1)[mask]
    torch.testing.assert_close(out, dense)
    assert torch.equal(torch.stack([b, i, j], 1), torch.nonzero(mask))
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [feat, conv.weight,
                                                  conv.bias])
    dense_grads = torch.autograd.grad((dense * g).sum(),
                                      [feat, conv.weight, conv.bias])
    for a, d in zip(grads, dense_grads):
        torch.testing.assert_close(a, d)


def test_empty_mask_and_which_convs_qualify():
    conv = nn.Conv2d(4, 5, 3, padding=1)
    out, _ = masked_conv2d_cells(torch.randn(2, 4, 5, 5),
                                 torch.zeros(2, 5, 5, dtype=torch.bool), conv)
    assert out.shape == (0, 5)
    assert is_same_size_conv(conv)
    assert not is_same_size_conv(nn.Conv2d(4, 5, 3, padding=0))
    assert not is_same_size_conv(nn.Conv2d(4, 5, 3, padding=1, stride=2))
    assert not is_same_size_conv(nn.Conv2d(4, 4, 3, padding=1, groups=2))
    assert not is_same_size_conv(
        nn.Conv2d(4, 5, 3, padding=1, padding_mode='reflect'))


def test_flop_counts():
    """The counter sees every conv call; the masked count is the dense
    conv's at a full mask and scales with the cells."""
    from fgd_mmrazor.utils import conv_flops, masked_conv_flops
    conv = nn.Conv2d(6, 10, 3, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(10, 4, 1, stride=2),
                        nn.Conv2d(4, 4, 3, padding=1, groups=2))
    feat = torch.randn(2, 6, 8, 8)
    expected = 2 * (2 * 10 * 8 * 8 * 6 * 9 + 2 * 4 * 4 * 4 * 10 +
                    2 * 4 * 4 * 4 * 2 * 9)
    assert conv_flops(net, lambda: net(feat)) == expected
    assert conv_flops(net, lambda: (net(feat), net(feat))) == 2 * expected
    assert conv_flops(net, lambda: None) == 0
    assert not conv._forward_hooks  # hooks removed
    assert masked_conv_flops(2 * 8 * 8, conv) == conv_flops(
        conv, lambda: conv(feat))
    assert masked_conv_flops(13, conv) == 13 * 2 * 6 * 9 * 10
