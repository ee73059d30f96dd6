"""Pre-flight check of a teacher for feature imitation (before training).

Feature imitation can only transfer what the teacher's features hold and
the student's do not. :func:`check_teacher` measures, on a few training
batches and within minutes on a CPU:

* per imitated level, the **linear probe**: the share of the teacher's
  feature variance at the masked cells that a 1x1 linear map of the
  student's feature explains on held-out batches
  (:func:`~fgd_mmrazor.utils.linear_probe_explained_variance`, the ridge
  penalty chosen on a validation batch). With a student trained alone,
  ``1 - probe`` is what the teacher holds near the objects that the student
  does not learn by itself: the room imitation has;
* the **mask coverage**: the share of the cells that are imitated, and
  cells per ground-truth box;
* the **imitation/detection gradient ratio and cosine** on the student's
  parameters at the configured ``loss_weight``, after the adapters have
  been fitted alone for as many steps as the config's
  ``AdapterWarmupHook`` gives them (``adapter_only_iters``), with the
  config's learning rate;
* a **suggested loss_weight**: the one at which that ratio equals
  ``target_ratio``;
* a one-line **verdict**.
"""
import copy
import math
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config

from ..utils import linear_probe_explained_variance
from .models import build_distill_runner_parts, detection_loss, imitation_loss

__all__ = [
    'collect_level_records', 'probe_levels', 'mask_coverage', 'fit_adapters',
    'gradient_ratio', 'suggest_loss_weight', 'verdict', 'check_teacher',
    'format_report', 'read_batches', 'adapter_only_iters', 'base_lr',
    'RIDGES', 'TARGET_RATIO', 'ROOM_THRESHOLD'
]

# Ridge penalties tried by the probe (relative to the student channels'
# mean variance); the one with the best validation score is used.
RIDGES = (1e-3, 1e-2, 1e-1, 1.0)
# Imitation/detection gradient-norm ratio on the student's backbone and
# neck that the suggested loss_weight aims at: the ratio of the demo's
# recipe (loss_weight 0.001, the best of 0.001 / 0.01 / 0.1 / 1 over seeds
# 0-2) from the COCO-pretrained teacher, 0.033 (docs/results.md).
TARGET_RATIO = 0.03
# A level has room for imitation when the student trained alone explains
# less than this share of the teacher's variance at the masked cells.
ROOM_THRESHOLD = 0.5


@torch.no_grad()
def collect_level_records(model, batches: Sequence[dict]) -> Dict[str, list]:
    """Per level, the lists of (student feature, teacher feature, mask) of
    each batch. Both models run in eval mode (BatchNorm with its running
    statistics), so the probe compares the features the two trained models
    compute, not one batch's statistics."""
    distiller = model.distiller
    was_training = model.training
    model.eval()
    records = {name: ([], [], []) for name in distiller.level_names}
    for batch in batches:
        model(**_preprocess(model, batch), mode='loss')
        for name in distiller.level_names:
            for kept, record in zip(records[name], distiller.records(name)):
                kept.append(record.detach())
    model.train(was_training)
    return records


def probe_levels(records: Dict[str, list],
                 num_eval: int = 2,
                 ridges: Sequence[float] = RIDGES) -> Dict[str, dict]:
    """Held-out linear probe per level.

    The last ``num_eval`` batches are held out; of the others, the last
    one validates the ridge penalty, then the probe is refitted on all of
    them with that penalty and scored on the held-out batches.

    Returns:
        dict: Per level ``probe`` (held-out explained variance), ``ridge``
        and ``cells`` (fit / held out).
    """
    out = {}
    for name, (student, teacher, mask) in records.items():
        n = len(student)
        if n < num_eval + 2:
            raise ValueError(f'the probe needs at least {num_eval + 2} '
                             f'batches, got {n}')
        fit = slice(0, n - num_eval)
        val_fit, val = slice(0, n - num_eval - 1), slice(n - num_eval - 1,
                                                         n - num_eval)
        held = slice(n - num_eval, n)

        def score(train, test, ridge):
            return linear_probe_explained_variance(
                student[train], teacher[train], mask[train], student[test],
                teacher[test], mask[test], ridge=ridge)

        scored = [(score(val_fit, val, r), r) for r in ridges]
        scored = [(s, r) for s, r in scored if not math.isnan(s)]
        ridge = max(scored)[1] if scored else ridges[-1]
        out[name] = dict(
            probe=score(fit, held, ridge),
            ridge=ridge,
            cells=(sum(int(m.sum()) for m in mask[fit]),
                   sum(int(m.sum()) for m in mask[held])))
    return out


def mask_coverage(records: Dict[str, list],
                  num_boxes: int) -> Dict[str, dict]:
    """Per level: the share of cells imitated and cells per GT box."""
    out = {}
    for name, (_, _, mask) in records.items():
        cells = sum(int(m.sum()) for m in mask)
        total = sum(m.numel() for m in mask)
        out[name] = dict(
            share=cells / total if total else float('nan'),
            cells_per_box=cells / num_boxes if num_boxes else float('nan'))
    return out


def _preprocess(model, batch: dict) -> dict:
    """The model's training input of a loader batch. The batch is copied:
    data preprocessors may change it in place (mmyolo's rescales the
    boxes), and the check reads each batch more than once."""
    return model.data_preprocessor(copy.deepcopy(batch), True)


def fit_adapters(model, batches: Sequence[dict], steps: int,
                 lr: float) -> List[float]:
    """Train the adapters alone on the imitation loss (the student's
    imitation gradient switched off), as ``AdapterWarmupHook``'s first
    phase does; ``steps`` AdamW steps cycling over ``batches``.

    Returns:
        list[float]: The imitation loss before each step.
    """
    distiller = model.distiller
    params = [p for p in distiller.connectors.parameters()
              if p.requires_grad]
    if not params or steps <= 0:
        return []
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    scale = distiller.student_grad_scale
    distiller.student_grad_scale = 0.0
    history = []
    try:
        for step in range(steps):
            batch = batches[step % len(batches)]
            losses = model(**_preprocess(model, batch), mode='loss')
            loss = imitation_loss(losses)
            optim.zero_grad()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for p, g in zip(params, grads):
                p.grad = g
            optim.step()
            history.append(float(loss.detach()))
    finally:
        distiller.student_grad_scale = scale
    return history


def gradient_ratio(model, batches: Sequence[dict]) -> dict:
    """Norm ratio and cosine of the imitation and the detection gradients
    on the student's parameters that both reach (backbone and neck), the
    imitation at full strength (``student_grad_scale = 1``), summed over
    ``batches``."""
    distiller = model.distiller
    params = [p for n, p in model.architecture.named_parameters()
              if p.requires_grad and not n.startswith('bbox_head.')]
    scale = distiller.student_grad_scale
    distiller.student_grad_scale = 1.0
    g_det = [torch.zeros_like(p) for p in params]
    g_imi = [torch.zeros_like(p) for p in params]
    det_value = imi_value = 0.0
    try:
        for batch in batches:
            losses = model(**_preprocess(model, batch), mode='loss')
            det, imi = detection_loss(losses), imitation_loss(losses)
            det_value += float(det.detach())
            imi_value += float(imi.detach())
            for acc, loss, keep in ((g_det, det, True), (g_imi, imi, False)):
                grads = torch.autograd.grad(
                    loss, params, retain_graph=keep, allow_unused=True)
                for a, g in zip(acc, grads):
                    if g is not None:
                        a += g
    finally:
        distiller.student_grad_scale = scale
    dd = sum(float(a.pow(2).sum()) for a in g_det)
    ii = sum(float(b.pow(2).sum()) for b in g_imi)
    di = sum(float((a * b).sum()) for a, b in zip(g_det, g_imi))
    return dict(
        ratio=math.sqrt(ii / dd) if dd else float('inf'),
        cosine=di / (math.sqrt(dd * ii) + 1e-30),
        detection_loss=det_value / len(batches),
        imitation_loss=imi_value / len(batches))


def suggest_loss_weight(loss_weight: float, ratio: float,
                        target_ratio: float = TARGET_RATIO) -> float:
    """The loss_weight at which the gradient ratio would be
    ``target_ratio`` (the imitation gradient is linear in the weight)."""
    if not ratio or not math.isfinite(ratio):
        return float('nan')
    return loss_weight * target_ratio / ratio


def verdict(probes: Dict[str, dict], grads: dict, loss_weight: float,
            suggested: float, trained_student: bool,
            room_threshold: float = ROOM_THRESHOLD) -> str:
    """One line: is there anything to transfer, and is the weight right."""
    room = [name for name, p in probes.items()
            if not math.isnan(p['probe']) and p['probe'] < room_threshold]
    if not trained_student:
        head = ('UNKNOWN: no --student-ckpt, so the probe compares the '
                'teacher with an untrained student; train the student '
                'alone first and pass its checkpoint')
    elif room:
        head = (f'GO: the student alone explains less than '
                f'{room_threshold:.0%} of the teacher\'s features near the '
                f'objects at {", ".join(room)}; the teacher holds '
                'something to transfer')
    else:
        head = (f'LITTLE TO TRANSFER: the student alone already explains '
                f'at least {room_threshold:.0%} of the teacher\'s features '
                'near the objects at every level; expect no gain from '
                'imitation')
    if math.isfinite(suggested) and suggested > 0:
        factor = suggested / loss_weight
        if factor > 3 or factor < 1 / 3:
            head += (f'; loss_weight {loss_weight:g} gives gradient ratio '
                     f'{grads["ratio"]:.2f}, try {suggested:.2g}')
        else:
            head += f'; loss_weight {loss_weight:g} is about right'
    return head


def read_batches(loader, num: int) -> List[dict]:
    """``num`` batches, reading the loader for more than one epoch when
    the training set is smaller (new augmentations each epoch)."""
    batches: List[dict] = []
    while len(batches) < num:
        before = len(batches)
        for batch in loader:
            batches.append(batch)
            if len(batches) == num:
                break
        if len(batches) == before:
            raise ValueError('the training loader gives no batches')
    return batches


def _num_boxes(data_samples) -> int:
    """GT boxes of a collated batch: mmyolo's fast collate packs them in
    ``bboxes_labels``, mmdet's keeps one data sample per image."""
    if isinstance(data_samples, dict):
        return len(data_samples['bboxes_labels'])
    return sum(len(s.gt_instances) for s in data_samples)


def adapter_only_iters(cfg: Config) -> int:
    """The config's ``AdapterWarmupHook.adapter_only_iters`` (0 without
    the hook)."""
    for hook in cfg.get('custom_hooks', None) or []:
        if str(hook.get('type', '')).split('.')[-1] == 'AdapterWarmupHook':
            return int(hook.get('adapter_only_iters', 0))
    return 0


def base_lr(cfg: Config) -> float:
    """The learning rate of the config's optimizer."""
    optim = cfg.optim_wrapper.get('optimizer', {})
    return float(optim.get('lr', 1e-3))


def check_teacher(config: str,
                  teacher_ckpt: str,
                  student_ckpt: Optional[str] = None,
                  num_batches: int = 8,
                  num_eval: int = 2,
                  grad_batches: int = 2,
                  fit_steps: Optional[int] = None,
                  target_ratio: float = TARGET_RATIO,
                  seed: int = 0,
                  work_dir: Optional[str] = None,
                  cfg_options: Optional[dict] = None) -> dict:
    """Run the whole pre-flight check (see the module's docstring).

    Args:
        config (str): A distillation config (``FGDDistill``).
        teacher_ckpt (str): The teacher's checkpoint.
        student_ckpt (str, optional): The student trained alone (plain or
            distillation checkpoint). Without it the probe and gradients are
            those of a freshly initialised student.
        num_batches (int): Training batches read for the probe.
        num_eval (int): Of them, held out for the probe's score.
        grad_batches (int): Batches of the gradient measurement.
        fit_steps (int, optional): Adapter-only steps; defaults to the
            config's ``AdapterWarmupHook.adapter_only_iters`` (at least
            ``num_batches``).
        target_ratio (float): See :func:`suggest_loss_weight`.
        cfg_options (dict, optional): Merged into the config first (the
            ``--cfg-options`` of the tools).

    Returns:
        dict: ``levels`` (probe, ridge, cells, coverage per level),
        ``gradients``, ``loss_weight``, ``suggested_loss_weight``,
        ``adapter_fit`` (first and last imitation loss), ``student`` and
        ``verdict``.
    """
    cfg, model, loader, loaded = build_distill_runner_parts(
        config, teacher_ckpt, student_ckpt, seed, work_dir, cfg_options)
    model.train()
    batches = read_batches(loader, num_batches)
    num_boxes = sum(_num_boxes(b['data_samples']) for b in batches)
    records = collect_level_records(model, batches)
    probes = probe_levels(records, num_eval=num_eval)
    coverage = mask_coverage(records, num_boxes)
    del records
    steps = fit_steps if fit_steps is not None else max(
        adapter_only_iters(cfg), num_batches)
    history = fit_adapters(model, batches, steps, base_lr(cfg))
    grads = gradient_ratio(model, batches[:grad_batches])
    losses = model.distiller.distill_losses
    loss_weight = float(
        getattr(next(iter(losses.values())), 'loss_weight', 1.0))
    suggested = suggest_loss_weight(loss_weight, grads['ratio'],
                                    target_ratio)
    levels = {
        name: dict(**probes[name], **coverage[name])
        for name in probes
    }
    return dict(
        config=config,
        teacher_ckpt=teacher_ckpt,
        student=loaded['into'] if loaded else 'freshly initialised',
        levels=levels,
        gradients=grads,
        loss_weight=loss_weight,
        target_ratio=target_ratio,
        suggested_loss_weight=suggested,
        adapter_fit=dict(
            steps=len(history),
            first=history[0] if history else None,
            last=history[-1] if history else None),
        verdict=verdict(probes, grads, loss_weight, suggested,
                        loaded is not None))


def format_report(result: dict) -> str:
    """The check's result as Markdown tables and the verdict."""
    lines = [
        f'student: {result["student"]}; imitation loss_weight '
        f'{result["loss_weight"]:g}', '',
        '| level | probe (held-out explained variance) | ridge | masked '
        'cells (fit / held out) | cells imitated | cells per box |',
        '| --- | --- | --- | --- | --- | --- |'
    ]
    for name, lv in result['levels'].items():
        lines.append(
            f'| {name} | {lv["probe"]:+.2f} | {lv["ridge"]:g} | '
            f'{lv["cells"][0]} / {lv["cells"][1]} | {lv["share"]:.1%} | '
            f'{lv["cells_per_box"]:.1f} |')
    g, fit = result['gradients'], result['adapter_fit']
    lines += [
        '',
        f'adapters fitted alone for {fit["steps"]} steps (imitation loss '
        f'{fit["first"] or float("nan"):.4g} -> '
        f'{fit["last"] or float("nan"):.4g})',
        f'detection loss {g["detection_loss"]:.4f}, weighted imitation '
        f'loss {g["imitation_loss"]:.4f}',
        f'imitation / detection gradient on the student\'s backbone and '
        f'neck: ratio {g["ratio"]:.3f}, cosine {g["cosine"]:+.3f}',
        f'suggested loss_weight (ratio {result["target_ratio"]:g}): '
        f'{result["suggested_loss_weight"]:.3g}', '',
        f'verdict: {result["verdict"]}'
    ]
    return '\n'.join(lines)
