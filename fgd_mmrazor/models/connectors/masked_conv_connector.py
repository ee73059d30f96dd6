"""An adaptation conv that can also be evaluated at masked cells only.

The imitation loss reads the adapted student feature only where the mask is
set (about a tenth of the cells). ``MaskedConvConnector`` is MMRazor's
``ConvModuleConnector`` (same parameters, same checkpoint keys) with the
defaults of the paper's adaptation layer, a plain same-size conv, and one
more method, :meth:`forward_cells`, that gives the conv's output at the
masked cells only, at a cost proportional to their number
(:func:`~fgd_mmrazor.ops.masked_conv2d_cells`).

``FGDDistiller`` takes that sparse path when both the connector and the
loss offer ``forward_cells`` (the contract), and the connector says it is
exact (:attr:`supports_cells`: no norm, no activation, a same-size conv).

Config::

    connector=dict(type='MaskedConvConnector', kernel_size=3)
"""
from typing import Dict, Optional, Tuple

from torch import Tensor
from mmrazor.models.architectures.connectors import ConvModuleConnector
from mmrazor.registry import MODELS

from ...ops.masked_conv import is_same_size_conv, masked_conv2d_cells

__all__ = ['MaskedConvConnector']


@MODELS.register_module()
class MaskedConvConnector(ConvModuleConnector):
    """``ConvModuleConnector`` with :meth:`forward_cells`.

    Args:
        in_channel (int): The student's channels.
        out_channel (int): The teacher's channels.
        kernel_size (int): Odd kernel size. Defaults to 3 (the paper's).
        padding (int, optional): Defaults to ``kernel_size // 2``: the
            output has the input's size.
        norm_cfg (dict, optional): Defaults to None. With a norm layer the
            connector still works densely, but not at the cells only.
        act_cfg (dict, optional): Defaults to None (no ReLU: the neck
            features of SiLU networks are partly negative).
        **kwargs: Other ``ConvModuleConnector`` arguments.
    """

    def __init__(self,
                 in_channel: int,
                 out_channel: int,
                 kernel_size: int = 3,
                 padding: Optional[int] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        super().__init__(
            in_channel,
            out_channel,
            kernel_size=kernel_size,
            padding=kernel_size // 2 if padding is None else padding,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            **kwargs)

    @property
    def supports_cells(self) -> bool:
        """Whether :meth:`forward_cells` is exact: a plain same-size conv
        without norm or activation."""
        module = self.conv_module
        return not module.with_norm and not module.with_activation and \
            is_same_size_conv(module.conv)

    def forward_cells(
            self,
            feature: Tensor,
            mask: Tensor,
            cells: Optional[Tuple[Tensor, ...]] = None
    ) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """The connector's output at the cells where ``mask`` is set.

        Args:
            feature (Tensor): The student feature, (B, C_in, H, W).
            mask (Tensor): (B, H, W), bool or 0/1.
            cells (tuple[Tensor, ...], optional): ``torch.nonzero(mask,
                as_tuple=True)`` when the caller has it (the mask recorder
                gives all levels' cells with one wait for the device).

        Returns:
            tuple: the outputs (N_p, C_out) in ``torch.nonzero(mask)``
            order, and the indices ``(b, i, j)`` of those cells.
        """
        if not self.supports_cells:
            raise ValueError(
                'MaskedConvConnector.forward_cells needs a plain same-size '
                'conv (no norm, no activation, padding kernel_size // 2)')
        conv = self.conv_module.conv
        if feature.shape[1] != conv.in_channels:
            raise ValueError(
                f'MaskedConvConnector: the student feature has '
                f'{feature.shape[1]} channels but the adapter expects '
                f'{conv.in_channels}; fix student_channels.')
        return masked_conv2d_cells(feature, mask, conv, cells)
