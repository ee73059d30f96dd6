"""Arithmetic of a step, counted from the convolutions that run.

The benchmark compares the distilled step with its floor (a student step
plus a teacher forward) in time, which a shared CPU measures to about
+-5%; these counts give the same comparison in multiply-adds, which do not
depend on the machine. Two FLOPs per multiply-add; only convolutions are
counted (they are nearly all of a YOLO's arithmetic).
"""
from typing import Callable

from torch import nn

__all__ = ['conv_flops', 'masked_conv_flops']


def _conv_hook(total: list) -> Callable:

    def hook(module: nn.Conv2d, inputs, output) -> None:
        kh, kw = module.kernel_size
        total[0] += 2 * output.numel() * (module.in_channels //
                                          module.groups) * kh * kw

    return hook


def conv_flops(model: nn.Module, fn: Callable[[], object]) -> int:
    """FLOPs of the ``nn.Conv2d`` forwards of ``model`` while ``fn()`` runs
    (a conv called twice counts twice; biases are not counted)."""
    total = [0]
    handles = [
        m.register_forward_hook(_conv_hook(total)) for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        fn()
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def masked_conv_flops(num_cells: int, conv: nn.Conv2d) -> int:
    """Forward FLOPs of ``conv`` evaluated at ``num_cells`` output cells
    (``fgd_mmrazor.ops.masked_conv2d_cells``). Its backward (input and
    weight gradients) costs twice that."""
    kh, kw = conv.kernel_size
    return 2 * num_cells * (conv.in_channels //
                            conv.groups) * kh * kw * conv.out_channels
