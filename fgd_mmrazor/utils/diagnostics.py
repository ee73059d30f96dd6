"""How well an adapted student feature imitates the teacher's."""
from torch import Tensor

__all__ = ['explained_variance']


def explained_variance(adapted: Tensor, teacher: Tensor,
                       mask: Tensor) -> float:
    """Share of the teacher's feature variance at the masked cells that the
    adapted student feature explains.

    ``1 - sum (adapted - teacher)^2 / sum (teacher - mean)^2``, summed over
    the masked cells and all channels, with the teacher's mean feature
    over those cells: 1 is a perfect imitation, 0 is no better than the
    teacher's mean feature, and it is negative when worse than that.

    Args:
        adapted (Tensor): Adapted student feature, (B, C, H, W).
        teacher (Tensor): Teacher feature, (B, C, H, W).
        mask (Tensor): Bool (B, H, W).

    Returns:
        float: The explained variance; NaN with fewer than two masked
        cells or a constant teacher feature.
    """
    t = teacher.detach().permute(0, 2, 3, 1)[mask]  # (N_p, C)
    a = adapted.detach().permute(0, 2, 3, 1)[mask]
    spread = float((t - t.mean(0)).pow(2).sum()) if len(t) > 1 else 0.0
    if spread == 0:
        return float('nan')
    return 1 - float((a - t).pow(2).sum()) / spread
