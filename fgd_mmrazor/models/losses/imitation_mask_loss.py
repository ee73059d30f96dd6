"""Masked feature-imitation loss of Wang et al., CVPR 2019.

"Distilling Object Detectors with Fine-grained Feature Imitation",
Tao Wang, Li Yuan, Xiaopeng Zhang, Jiashi Feng, CVPR 2019.

Config (one loss per imitated level; the adaptation conv is a connector and
the mask comes from an ``ImitationMaskRecorder``, see ``FGDDistiller``)::

    distill_losses=dict(
        loss_imitation_p3=dict(type='ImitationMaskLoss', loss_weight=0.01))
    loss_forward_mappings=dict(
        loss_imitation_p3=dict(
            preds_S=dict(from_student=True, recorder='p3',
                         connector='adapt_p3'),
            preds_T=dict(from_student=False, recorder='p3'),
            mask=dict(from_student=True, recorder='imitation_mask',
                      data_idx=0)))
"""
from typing import Optional, Union

import torch
from torch import Tensor, nn

from mmrazor.registry import MODELS

__all__ = ['ImitationMaskLoss']


def check_shapes(student_shape, teacher_shape,
                 mask: Optional[Tensor]) -> None:
    """Clear errors for adapted student / teacher / mask shapes that do not
    fit (instead of a broadcasting error deep inside torch)."""
    if tuple(student_shape) != tuple(teacher_shape):
        raise ValueError(
            'ImitationMaskLoss: the adapted student feature has shape '
            f'{tuple(student_shape)} but the teacher feature has shape '
            f'{tuple(teacher_shape)}. Set the adapter (connector) '
            "out_channel to the teacher's channels and imitate layers "
            'of the same stride.')
    if mask is not None and (mask.dim() != 3
                             or mask.shape[0] != student_shape[0]
                             or tuple(mask.shape[1:]) != tuple(
                                 student_shape[2:])):
        raise ValueError(
            f'ImitationMaskLoss: mask shape {tuple(mask.shape)} does not '
            f'match the feature shape {tuple(student_shape)}: expected '
            f'(B, H, W) = ({student_shape[0]}, {student_shape[2]}, '
            f'{student_shape[3]}). Check the strides given to the mask '
            'recorder.')


@MODELS.register_module()
class ImitationMaskLoss(nn.Module):
    r"""Squared error between adapted student and teacher features, summed
    over the mask cells and all channels and divided by :math:`2 N_p`.

    .. math::
        L = \frac{\lambda}{2 N_p} \sum_{b,i,j} I_{bij}
            \sum_c (f_{adap}(s)_{bcij} - t_{bcij})^2

    where :math:`N_p = \sum I` is the number of mask cells in the batch. The
    loss is not divided by the channel count (as in the paper).

    Relation to the detection loss: mmyolo's YOLOv5 head multiplies its
    losses by ``batch_size * world_size``, whereas this loss is a mean per
    mask cell, so its size relative to the detection loss changes with the
    batch size. The paper's :math:`\lambda = 0.01` is the default; configs
    set it so that the imitation term is of the order of the detection loss
    (see ``docs/method.md``).

    Args:
        loss_weight (float): :math:`\lambda`. Defaults to 0.01.
    """

    def __init__(self, loss_weight: float = 0.01) -> None:
        super().__init__()
        if not loss_weight >= 0:
            raise ValueError(
                f'loss_weight must be >= 0, got {loss_weight!r}')
        self.loss_weight = float(loss_weight)

    def forward(self,
                preds_S: Tensor,
                preds_T: Tensor,
                mask: Optional[Tensor] = None,
                num_pos: Optional[Union[int, Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Adapted student feature, (B, C, H, W).
            preds_T (Tensor): Teacher feature, (B, C, H, W). No gradient
                flows into it.
            mask (Tensor, optional): Imitation mask, (B, H, W), bool or 0/1.
                None imitates every cell (the paper's "whole feature map"
                ablation). Defaults to None.
            num_pos (int | Tensor, optional): The normaliser N_p. Defaults
                to the number of cells of ``mask`` (or of the map); the
                distiller passes the mask cells of all levels together
                (``FGDDistiller(num_pos='all_levels')``).

        Returns:
            Tensor: A scalar, float32 or wider. A batch whose mask is empty
            gives 0 (still connected to the graph, so every parameter of the
            adapter gets a zero gradient).
        """
        check_shapes(preds_S.shape, preds_T.shape, mask)
        # fp32 at least: squared sums of fp16 features overflow.
        dtype = torch.promote_types(preds_S.dtype, torch.float32)
        diff = (preds_S.to(dtype) - preds_T.detach().to(dtype)).pow(2)
        if mask is None:
            cells = diff.new_tensor(float(diff.numel() // diff.shape[1]))
            total = diff.sum()
        else:
            weight = mask.to(dtype).unsqueeze(1)  # (B, 1, H, W)
            cells = weight.sum()
            total = (diff * weight).sum()
        if num_pos is not None:
            cells = torch.as_tensor(num_pos, dtype=dtype, device=diff.device)
        return self.loss_weight * total / (2 * cells.clamp(min=1))

    def forward_cells(self, preds_S: Tensor, preds_T: Tensor,
                      num_cells: Union[int, Tensor]) -> Tensor:
        """The same loss from the masked cells' vectors only.

        Args:
            preds_S (Tensor): Adapted student vectors of the N_p masked
                cells, (N_p, C).
            preds_T (Tensor): Teacher vectors of the same cells, (N_p, C).
            num_cells (int | Tensor): N_p: the number of masked cells, of
                this level or of all levels (0 gives 0). A tensor is used
                as it is (no wait for the device to read it).

        Returns:
            Tensor: ``loss_weight * sum((s - t)^2) / (2 N_p)``, as
            :meth:`forward` with the mask.
        """
        if preds_S.shape != preds_T.shape:
            raise ValueError(
                'ImitationMaskLoss: the adapted student vectors have shape '
                f'{tuple(preds_S.shape)} but the teacher vectors '
                f'{tuple(preds_T.shape)}')
        dtype = torch.promote_types(preds_S.dtype, torch.float32)
        total = (preds_S.to(dtype) - preds_T.detach().to(dtype)).pow(2).sum()
        cells = torch.as_tensor(num_cells, dtype=dtype, device=total.device)
        return self.loss_weight * total / (2 * cells.clamp(min=1))
