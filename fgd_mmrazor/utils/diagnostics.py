"""How well an adapted student feature imitates the teacher's."""
from typing import Sequence

import torch
from torch import Tensor

__all__ = ['explained_variance', 'linear_probe_explained_variance']


def _masked_cells(feats: Sequence[Tensor], masks: Sequence[Tensor]) -> Tensor:
    """Rows (N_p, C) of the masked cells of (B, C, H, W) features."""
    return torch.cat([
        f.detach().permute(0, 2, 3, 1)[m] for f, m in zip(feats, masks)
    ])


def _explained(pred: Tensor, target: Tensor) -> float:
    """``1 - sum (pred - target)^2 / sum (target - mean target)^2`` over
    rows (N, C); NaN with fewer than two rows or a constant target."""
    spread = float((target - target.mean(0)).pow(2).sum()) \
        if len(target) > 1 else 0.0
    if spread == 0:
        return float('nan')
    return 1 - float((pred - target).pow(2).sum()) / spread


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
    return _explained(_masked_cells([adapted], [mask]),
                      _masked_cells([teacher], [mask]))


def linear_probe_explained_variance(student_fit: Sequence[Tensor],
                                    teacher_fit: Sequence[Tensor],
                                    mask_fit: Sequence[Tensor],
                                    student_eval: Sequence[Tensor],
                                    teacher_eval: Sequence[Tensor],
                                    mask_eval: Sequence[Tensor],
                                    ridge: float = 1e-3) -> float:
    """How much of the teacher's feature variance at the masked cells a
    linear map of the student's feature explains, on held-out cells.

    A 1x1 map (with a bias) is fitted by ridge regression on the masked
    cells of the ``*_fit`` features and scored with
    :func:`explained_variance`'s formula on those of the ``*_eval``
    features. Unlike the trained adapter, it can be fitted to any student,
    e.g. one trained without imitation: the same probe on both students
    tells how much of the teacher's feature near the objects each already
    carries.

    Args:
        student_fit, teacher_fit (Sequence[Tensor]): (B, C_s, H, W) and
            (B, C_t, H, W) features, one pair per batch.
        mask_fit (Sequence[Tensor]): Bool (B, H, W) per batch.
        student_eval, teacher_eval, mask_eval: The same, held out.
        ridge (float): The ridge penalty, relative to the mean variance of
            the student's channels at the fitting cells.

    Returns:
        float: The held-out explained variance (NaN without cells).
    """
    x, y = (_masked_cells(f, mask_fit).double()
            for f in (student_fit, teacher_fit))
    xe, ye = (_masked_cells(f, mask_eval).double()
              for f in (student_eval, teacher_eval))
    if len(x) < 2:
        return float('nan')
    x_mean, y_mean = x.mean(0), y.mean(0)
    x, y = x - x_mean, y - y_mean
    gram = x.t() @ x
    scale = float(gram.diagonal().mean()) or 1.0
    eye = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    weight = torch.linalg.solve(gram + ridge * scale * eye, x.t() @ y)
    return _explained((xe - x_mean) @ weight + y_mean, ye)
