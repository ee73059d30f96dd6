"""Figures and tables of the demo report (matplotlib, Agg backend)."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

__all__ = [
    'read_scalars', 'plot_map', 'plot_losses', 'plot_masks',
    'model_complexity'
]


def _plt():
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
    plt = _plt()
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
    plt = _plt()
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
    plt = _plt()
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
