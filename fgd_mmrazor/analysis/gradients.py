"""Where the imitation gradient goes, and how well the student imitates
(``tools/diagnose_gradients.py``).

* :func:`imitation_fit`: per level, the share of the teacher's feature
  variance at the masked cells that the adapted student feature explains;
* :func:`block_gradients`: per block of the student, the norms of the
  detection and the imitation gradients and their cosine;
* :func:`linear_probe`: per level, a held-out 1x1 ridge probe from the
  student's to the teacher's feature at the masked cells (no adapter
  needed, so it compares a student trained alone with a distilled one).
"""
import copy
from typing import Dict, List

import torch

from ..utils import explained_variance, linear_probe_explained_variance
from .models import detection_loss, imitation_loss

__all__ = ['imitation_fit', 'block_gradients', 'linear_probe']


@torch.no_grad()
def imitation_fit(distiller) -> List[dict]:
    """Per level of the last training forward: ``level``, masked
    ``cells``, the teacher's ``std`` there and the ``explained`` variance
    of the adapted student feature (1: perfect, 0: no better than the
    teacher's mean feature)."""
    rows = []
    for name in distiller.level_names:
        student, teacher, mask = distiller.records(name)
        adapter = distiller.adapter(name)
        adapted = adapter(student) if adapter is not None else student
        rows.append(
            dict(level=name,
                 cells=int(mask.sum()),
                 std=float(teacher.permute(0, 2, 3, 1)[mask].std()),
                 explained=explained_variance(adapted, teacher, mask)))
    return rows


def block_gradients(model, losses: dict) -> Dict[str, dict]:
    """Norms of the detection and the imitation gradients of ``losses``
    (one training forward of the algorithm ``model``) per block of the
    student (the first three levels of the parameter names, e.g.
    ``backbone.stage2.1``), their ratio and cosine. Blocks the imitation
    does not reach (the head) are left out."""
    params = [(n, p) for n, p in model.architecture.named_parameters()
              if p.requires_grad]
    tensors = [p for _, p in params]
    g_det = torch.autograd.grad(detection_loss(losses), tensors,
                                retain_graph=True, allow_unused=True)
    g_imi = torch.autograd.grad(imitation_loss(losses), tensors,
                                allow_unused=True)
    sums = {}
    for (name, p), a, b in zip(params, g_det, g_imi):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        acc = sums.setdefault('.'.join(name.split('.')[:3]), [0.0] * 3)
        acc[0] += float(a.pow(2).sum())
        acc[1] += float(b.pow(2).sum())
        acc[2] += float((a * b).sum())
    out = {}
    for name, (dd, ii, di) in sums.items():
        if ii == 0:
            continue
        out[name] = dict(
            detection=dd**0.5,
            imitation=ii**0.5,
            ratio=(ii / dd)**0.5 if dd else float('inf'),
            cosine=di / ((dd * ii)**0.5 + 1e-30))
    return out


@torch.no_grad()
def linear_probe(model, loader, num_batches: int,
                 ridge: float) -> List[dict]:
    """Fit a 1x1 map from the student's to the teacher's feature at the
    masked cells of the first ``num_batches - 1`` training batches; score
    it on the last. The features are those of training (the student in
    train mode, the teacher in eval mode).

    Returns:
        list[dict]: per level ``level``, ``cells`` (fit, held out) and the
        held-out ``explained`` variance.
    """
    if num_batches < 2:
        raise ValueError('the probe needs at least 2 batches')
    distiller = model.distiller
    feats = {name: ([], [], []) for name in distiller.level_names}
    for _, batch in zip(range(num_batches), loader):
        model(**model.data_preprocessor(copy.deepcopy(batch), True),
              mode='loss')
        for name in distiller.level_names:
            for kept, record in zip(feats[name], distiller.records(name)):
                kept.append(record)
    rows = []
    for name, (student, teacher, mask) in feats.items():
        fit = linear_probe_explained_variance(student[:-1], teacher[:-1],
                                              mask[:-1], student[-1:],
                                              teacher[-1:], mask[-1:],
                                              ridge=ridge)
        rows.append(
            dict(level=name,
                 cells=(sum(int(m.sum()) for m in mask[:-1]),
                        int(mask[-1].sum())),
                 explained=fit))
    return rows
