"""Where the imitation gradient goes, and how well the student imitates
(``tools/diagnose_gradients.py``).

* :func:`imitation_fit`: per level, the share of the teacher's feature
  variance at the masked cells that the adapted student feature explains;
* :func:`block_gradients`: per block of the student, the norms of the
  detection and the imitation gradients and their cosine;
* :func:`linear_probe`: per level, a held-out 1x1 ridge probe from the
  student's to the teacher's feature at the masked cells (no adapter
  needed, so it compares a student trained alone with a distilled one);
* :func:`amp_differences`: how much mixed precision changes one step's
  imitation losses and the imitation gradients of the adapters and the
  student, against fp32 (same weights, same batch).
"""
import copy
from typing import Dict, List

import torch

from ..utils import explained_variance, linear_probe_explained_variance
from .models import detection_loss, imitation_loss

__all__ = ['imitation_fit', 'block_gradients', 'linear_probe',
           'amp_differences']


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


def _relative(a: List[torch.Tensor], b: List[torch.Tensor]) -> float:
    """``||a - b|| / ||b||`` over lists of tensors."""
    diff = sum(float((x.float() - y.float()).pow(2).sum())
               for x, y in zip(a, b))
    norm = sum(float(y.float().pow(2).sum()) for y in b)
    return (diff / norm)**0.5 if norm > 0 else float('nan')


def amp_differences(model, make_data, dtype=torch.bfloat16,
                    device_type: str = 'cpu') -> dict:
    """Relative differences of one training forward and backward under
    autocast (``dtype``) against the same step in fp32, from the same
    weights and batch.

    Args:
        model: An ``FGDDistill`` algorithm in train mode.
        make_data (callable): Returns a fresh preprocessed batch
            (``dict(inputs=..., data_samples=...)``; the YOLOv5 head edits
            its boxes in place, so each forward gets its own).
        dtype: The autocast dtype. Defaults to bfloat16.
        device_type (str): 'cpu' or 'cuda'.

    Returns:
        dict: ``imitation_losses`` (the largest relative difference over
        the levels' losses, and ``by_level``), ``adapter_grads`` and
        ``student_grads`` (``||g_amp - g_fp32|| / ||g_fp32||`` of the
        gradients of the imitation losses alone) and, for comparison,
        ``student_detection_grads`` (of the detection losses alone).
    """
    adapters = list(model.distiller.connectors.parameters())
    student = [p for p in model.architecture.parameters() if p.requires_grad]

    def zeros_for_unused(grads, params):
        return [torch.zeros_like(p) if g is None else g
                for g, p in zip(grads, params)]

    def step(enabled):
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=enabled):
            losses = model(**make_data(), mode='loss')
        values = {k: v.detach().float() for k, v in losses.items()
                  if k.startswith('distill.')}
        imitation = torch.autograd.grad(
            imitation_loss(losses), adapters + student, retain_graph=True,
            allow_unused=True)
        detection = torch.autograd.grad(detection_loss(losses), student,
                                        allow_unused=True)
        imitation = zeros_for_unused(imitation, adapters + student)
        return values, (imitation[:len(adapters)],
                        imitation[len(adapters):],
                        zeros_for_unused(detection, student))

    amp_losses, (amp_adapters, amp_student, amp_det) = step(True)
    ref_losses, (ref_adapters, ref_student, ref_det) = step(False)
    by_level = {
        k: abs(float(amp_losses[k] - v)) / abs(float(v))
        for k, v in ref_losses.items() if float(v) != 0
    }
    return dict(
        imitation_losses=max(by_level.values()) if by_level else
        float('nan'),
        by_level=by_level,
        adapter_grads=_relative(amp_adapters, ref_adapters),
        student_grads=_relative(amp_student, ref_student),
        student_detection_grads=_relative(amp_det, ref_det))
