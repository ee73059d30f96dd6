"""Figures and tables of the demo report (matplotlib, Agg backend)."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

__all__ = [
    'pyplot', 'read_scalars', 'plot_map', 'plot_losses', 'plot_masks',
    'model_complexity', 'gap_closed', 'demo_report', 'comparison_sentence',
    'NOISE_MAP'
]

# A difference in val bbox mAP between the two students that one seed of
# the default demo cannot tell from noise (docs/results.md: the spread of
# the paired differences over seeds).
NOISE_MAP = 0.02


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def read_scalars(work_dir: str) -> List[dict]:
    """Rows of the newest ``vis_data/scalars.json`` under ``work_dir``."""
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_map(results: Dict[str, Dict[str, float]], out: str) -> None:
    """Bar chart of bbox mAP and mAP50 per model."""
    plt = pyplot()
    names = list(results)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, (key, label) in enumerate((('bbox_mAP', 'mAP'),
                                      ('bbox_mAP_50', 'mAP50'))):
        vals = [results[n][key] for n in names]
        bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=label)
        ax.bar_label(bars, fmt='%.3f', fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel('COCO bbox AP (val)')
    ax.legend()
    ax.set_title('Trees val: teacher, student alone, distilled student')
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _series(rows: List[dict], keys: Sequence[str]):
    its, vals = [], []
    for r in rows:
        if all(k in r for k in keys):
            its.append(r['step'] if 'step' in r else r['iter'])
            vals.append(sum(r[k] for k in keys))
    return its, vals


def plot_losses(baseline_rows: List[dict], distilled_rows: List[dict],
                out: str) -> None:
    """Detection loss of both students and the imitation loss per level."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    det = ['loss_cls', 'loss_obj', 'loss_bbox']
    ax1.plot(*_series(baseline_rows, det), label='student alone')
    ax1.plot(
        *_series(distilled_rows, [f'student.{k}' for k in det]),
        label='distilled student')
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('detection loss')
    ax1.legend()
    keys = sorted(
        k for k in (distilled_rows[0] if distilled_rows else {})
        if k.startswith('distill.'))
    for k in keys:
        ax2.plot(*_series(distilled_rows, [k]), label=k)
    ax2.set_xlabel('iteration')
    ax2.set_ylabel('imitation loss (weighted)')
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_masks(image: np.ndarray, boxes: np.ndarray,
               masks: Sequence[torch.Tensor], strides: Sequence,
               out: str, title: Optional[str] = None) -> None:
    """The image with its boxes and each level's mask as an overlay.

    Args:
        image (np.ndarray): (H, W, 3) RGB uint8 (the padded input).
        boxes (np.ndarray): (N, 4) xyxy pixels.
        masks (Sequence[Tensor]): (H_l, W_l) bool per level.
        strides (Sequence): (sx, sy) or int per level.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle
    n = len(masks)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 4.2))
    axes = np.atleast_1d(axes)
    h, w = image.shape[:2]
    for ax, mask, stride in zip(axes, masks, strides):
        sx, sy = (stride, stride) if np.isscalar(stride) else stride
        ax.imshow(image)
        m = mask.detach().cpu().float().numpy()
        is_mask = mask.dtype == torch.bool
        ax.imshow(
            np.ma.masked_where(m == 0, m) if is_mask else m,
            cmap='autumn' if is_mask else 'magma',
            alpha=0.45 if is_mask else 0.6,
            extent=(0, m.shape[1] * sx, m.shape[0] * sy, 0),
            interpolation='nearest')
        for x1, y1, x2, y2 in boxes.tolist():
            ax.add_patch(
                Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                          edgecolor='cyan', linewidth=0.8))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_title(f'stride {int(sx)}: {int(mask.sum())} of '
                     f'{mask.numel()} cells' if is_mask else
                     f'stride {int(sx)}: max {float(m.max()):.3g}')
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def model_complexity(model: torch.nn.Module, img_hw=(320, 320)) -> dict:
    """Parameters and FLOPs of a detector's ``forward(mode='tensor')``."""
    from mmengine.analysis import get_model_complexity_info
    model.eval()
    info = get_model_complexity_info(
        model, input_shape=(3, *img_hw), show_table=False, show_arch=False)
    return dict(params=int(info['params']), flops=int(info['flops']))


def gap_closed(teacher: float, alone: float, distilled: float) -> float:
    """Fraction of the teacher-student gap the distillation closes:
    ``(distilled - alone) / (teacher - alone)`` (NaN without a gap)."""
    gap = teacher - alone
    return (distilled - alone) / gap if gap > 0 else float('nan')


def demo_report(configs: Dict[str, str], checkpoints: Dict[str, str],
                results: Dict[str, Dict[str, float]], seed: int,
                settings: dict, times: Dict[str, float],
                repo: Optional[str] = None) -> dict:
    """The demo's ``report.json``.

    Args:
        configs (dict): Config paths of ``teacher``, ``baseline`` (the
            student's plain config) and ``distilled``.
        checkpoints (dict): Exported plain checkpoints per stage.
        results (dict): ``{'bbox_mAP': ..., 'bbox_mAP_50': ...}`` per
            evaluated stage.
        seed (int): The random seed of all stages.
        settings (dict): What else defines the run (teacher, epochs, ...).
        times (dict): Wall time per stage, in seconds.
        repo (str, optional): Config paths are written relative to it.

    Returns:
        dict: ``student_config`` and ``teacher_config`` (the plain configs
        that ``tools/test.py`` evaluates the exported checkpoints with),
        ``distilled_config``, ``seed``, ``settings``, ``checkpoints``,
        ``results``, ``val_bbox_mAP``, ``paired_difference`` (distilled -
        alone) and ``gap_closed`` (:func:`gap_closed`) of mAP and mAP50
        where the three stages ran, and ``times_s``.
    """

    def rel(path):
        return osp.relpath(path, repo) if repo else path

    report = dict(
        student_config=rel(configs['baseline']),
        teacher_config=rel(configs['teacher']),
        distilled_config=rel(configs['distilled']),
        seed=int(seed),
        settings=settings,
        checkpoints={k: osp.abspath(v)
                     for k, v in checkpoints.items()},
        results=results,
        val_bbox_mAP={k: v['bbox_mAP']
                      for k, v in results.items()},
        times_s={k: round(float(v), 1)
                 for k, v in times.items()})
    if {'baseline', 'distilled'} <= set(results):
        report['paired_difference'] = {
            m: results['distilled'][m] - results['baseline'][m]
            for m in ('bbox_mAP', 'bbox_mAP_50')
        }
    if {'teacher', 'baseline', 'distilled'} <= set(results):
        report['gap_closed'] = {
            m: gap_closed(results['teacher'][m], results['baseline'][m],
                          results['distilled'][m])
            for m in ('bbox_mAP', 'bbox_mAP_50')
        }
    return report


def comparison_sentence(report: dict, noise: float = NOISE_MAP) -> str:
    """One sentence on the distilled student against the student alone,
    saying when one seed cannot tell them apart."""
    diff = report.get('paired_difference')
    if diff is None:
        return 'The students were not both trained in this run.'
    d = diff['bbox_mAP']
    text = (f'Distilled minus alone: {d:+.4f} bbox mAP '
            f'({diff["bbox_mAP_50"]:+.4f} mAP50)')
    gap = report.get('gap_closed', {}).get('bbox_mAP')
    if gap is not None and gap == gap:
        text += f', {100 * gap:.0f}% of the teacher-student gap closed'
    if abs(d) < noise:
        text += (f'. That is within noise for one seed (|difference| < '
                 f'{noise}): this run alone shows neither a gain nor a '
                 'loss.')
    else:
        text += '.'
    return text
