"""A same-size convolution evaluated only at masked cells.

The imitation loss reads the adapted student feature only where the mask
is set (N_p cells, about 10% of a map); the paper's 3x3 adapter, run
densely, costs about a third of a YOLOv5-s forward when it maps to the
teacher's (twice wider) channels (docs/benchmarks.md). Gathering each
masked cell's k x k neighbourhood and multiplying by the conv weight gives
exactly the conv's output at those cells, at a cost proportional to N_p.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['masked_conv2d_cells', 'is_same_size_conv', 'mask_cells']


def is_same_size_conv(conv: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` whose output has its input's size (odd square
    kernel, ``padding = k // 2`` with zeros, stride 1, no dilation or
    groups)."""
    if type(conv) is not nn.Conv2d:
        return False
    k = conv.kernel_size
    return (k[0] == k[1] and k[0] % 2 == 1 and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding == (k[0] // 2, k[1] // 2)
            and conv.padding_mode == 'zeros')


def mask_cells(masks: Sequence[Tensor]) -> List[Tuple[Tensor, ...]]:
    """``torch.nonzero(mask, as_tuple=True)`` of several masks, with one
    round trip to the host for all of them.

    On a GPU each ``nonzero`` waits for the device to learn its size; here
    the sizes of all masks are read at once and each mask's cells are then
    gathered at a known size (``torch.nonzero_static``, where torch has
    it).

    Args:
        masks (Sequence[Tensor]): (B, H_l, W_l) masks, bool or 0/1.

    Returns:
        list[tuple[Tensor, ...]]: per mask, the indices ``(b, i, j)`` of its
        set cells, in ``torch.nonzero`` order.
    """
    if not masks:
        return []
    static = getattr(torch, 'nonzero_static', None)
    if static is None or masks[0].device.type == 'cpu':
        return [torch.nonzero(m, as_tuple=True) for m in masks]
    counts = torch.stack([m.count_nonzero() for m in masks]).tolist()
    return [
        static(m, size=count).unbind(1) for m, count in zip(masks, counts)
    ]


def masked_conv2d_cells(
        feat: Tensor,
        mask: Tensor,
        conv: nn.Conv2d,
        cells: Optional[Tuple[Tensor, ...]] = None
) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """``conv(feat)`` at the cells where ``mask`` is set.

    Args:
        feat (Tensor): (B, C_in, H, W).
        mask (Tensor): (B, H, W), bool or 0/1.
        conv (nn.Conv2d): See :func:`is_same_size_conv`.
        cells (tuple[Tensor, ...], optional): ``torch.nonzero(mask,
            as_tuple=True)`` when already known (e.g. from
            :func:`mask_cells`). Defaults to None: computed here.

    Returns:
        tuple: the outputs (N_p, C_out) in ``torch.nonzero(mask)`` order,
        and the indices ``(b, i, j)`` of those cells. They are computed in
        the wider of the feature's and the weight's dtypes (an fp16
        feature with an fp32 conv: fp32, from the gathered cells only), or
        in autocast's dtype under autocast, as the dense conv would be.
    """
    k = conv.kernel_size[0]
    pad = k // 2
    b, i, j = torch.nonzero(mask, as_tuple=True) if cells is None else cells
    num, c_in, c_out = len(b), conv.in_channels, conv.out_channels
    height, width = feat.shape[2] + 2 * pad, feat.shape[3] + 2 * pad
    # Channels-last rows of the padded map, gathered with one index_select
    # (contiguous C_in-long rows; advanced indexing into the permuted view
    # gathered channel by channel and was 1.5-2x slower, forward and
    # backward).
    x = F.pad(feat, (pad, pad, pad, pad)).permute(0, 2, 3, 1).reshape(
        -1, c_in)
    offsets = torch.arange(k, device=feat.device)
    flat = ((b * height + i)[:, None, None] + offsets[:, None]) * width + \
        (j[:, None, None] + offsets)  # (N, k, k) rows of x
    patches = x.index_select(0, flat.view(-1))  # (N * k * k, C_in)
    if num < c_out:
        # Fewer cells than output channels: reorder the (smaller) patches
        # to the weight's (C_in, k, k) order and use the weight as a view,
        # so that neither it nor its gradient (4.7 M values for a 512 ->
        # 1024 adapter) is copied.
        patches = patches.view(num, k * k, c_in).transpose(1, 2).reshape(
            num, c_in * k * k)
        weight = conv.weight.view(c_out, -1)
    else:
        patches = patches.view(num, k * k * c_in)
        weight = conv.weight.permute(0, 2, 3, 1).reshape(c_out, -1)
    dtype = torch.promote_types(patches.dtype, weight.dtype)
    out = patches.to(dtype) @ weight.t().to(dtype)
    if conv.bias is not None:
        out = out + conv.bias.to(out.dtype)
    return out, (b, i, j)
