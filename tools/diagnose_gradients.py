"""Compare the detection and the imitation gradients of a distillation
config, block by block of the student.

    python tools/diagnose_gradients.py CONFIG --teacher-ckpt T \
        [--checkpoint CKPT] [--batches 2] [--grad-scale 1.0]

For a few training batches it back-propagates the student's detection
losses and the (weighted) imitation losses separately and prints, per
block (the first three levels of the parameter names, e.g.
``backbone.stage2.1``), the norm of each gradient, their ratio and their
cosine, and per imitated level how much of the teacher's feature
variance at the masked cells the adapted student feature explains
(``1 - sum (adapt(s) - t)^2 / sum (t - mean t)^2``, over the cells and
channels: 1 is a perfect imitation, 0 no better than the teacher's mean
feature). ``--checkpoint`` loads a plain student checkpoint (into the
student) or a distillation checkpoint (student and adapters); without it
the student and adapters are freshly initialised, as at the start of
training. docs/results.md uses it to show where the imitation gradient
dominates.

``--probe`` instead fits a 1x1 linear map (ridge regression) from the
student's to the teacher's feature at the masked cells of the first
``--batches`` - 1 batches and prints the share of the teacher's variance
it explains on the last batch (``fgd_mmrazor.utils.
linear_probe_explained_variance``). It needs no adapter, so the same
probe compares a student trained alone with a distilled one: how much of
the teacher's feature near the objects each student already carries.
"""
import argparse
import os.path as osp
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--teacher-ckpt', required=True)
    parser.add_argument('--checkpoint')
    parser.add_argument('--batches', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--probe', action='store_true',
                        help='print the held-out linear-probe explained '
                        'variance per level instead of the gradients')
    parser.add_argument('--ridge', type=float, default=1e-3,
                        help='ridge penalty of --probe (relative to the '
                        'mean variance of the student\'s channels)')
    parser.add_argument(
        '--grad-scale', type=float, default=1.0,
        help='FGDDistiller.student_grad_scale (1: the plain method)')
    return parser.parse_args()


def level_records(distiller, idx, name):
    """The student's and the teacher's recorded feature and the mask of
    level ``idx`` (named ``name``), of the last forward."""
    from fgd_mmrazor.models.distillers.fgd_distiller import MASK_RECORDER
    return (distiller.get_record(f'feat_{name}', True),
            distiller.get_record(f'feat_{name}', False),
            distiller.get_record(MASK_RECORDER, True, data_idx=idx))


@torch.no_grad()
def print_imitation_fit(distiller):
    """Share of the teacher's feature variance at the masked cells that
    the adapted student feature explains, per level (of the last
    forward)."""
    from fgd_mmrazor.utils import explained_variance
    print('| level | masked cells | teacher std there | explained variance |')
    print('| --- | --- | --- | --- |')
    for idx, name in enumerate(distiller.level_names):
        student, teacher, mask = level_records(distiller, idx, name)
        adapter = distiller.connectors[f'adapt_{name}']
        fit = explained_variance(adapter(student), teacher, mask)
        spread = teacher.permute(0, 2, 3, 1)[mask].std()
        print(f'| {name} | {int(mask.sum())} | {float(spread):.3f} | '
              f'{fit:+.2f} |')


@torch.no_grad()
def print_linear_probe(model, loader, num_batches, ridge):
    """Fit a 1x1 map from the student's to the teacher's feature at the
    masked cells of all batches but the last; score it on the last. The
    features are those of training (training batches, the student in
    train mode, the teacher in eval mode)."""
    from fgd_mmrazor.utils import linear_probe_explained_variance
    distiller = model.distiller
    levels = distiller.level_names
    feats = {name: ([], [], []) for name in levels}
    for _, batch in zip(range(num_batches), loader):
        model(**model.data_preprocessor(batch, True), mode='loss')
        for idx, name in enumerate(levels):
            for kept, record in zip(feats[name],
                                    level_records(distiller, idx, name)):
                kept.append(record)
    print('| level | masked cells (fit / held out) | linear probe, '
          'explained variance (held out) |')
    print('| --- | --- | --- |')
    for name in levels:
        student, teacher, mask = feats[name]
        fit = linear_probe_explained_variance(student[:-1], teacher[:-1],
                                              mask[:-1], student[-1:],
                                              teacher[-1:], mask[-1:],
                                              ridge=ridge)
        cells = sum(int(m.sum()) for m in mask[:-1])
        print(f'| {name} | {cells} / {int(mask[-1].sum())} | {fit:+.2f} |')


def main():
    args = parse_args()
    from fgd_mmrazor.analysis.teacher_check import (
        build_distill_runner_parts, detection_loss, imitation_loss)
    _, model, loader, loaded = build_distill_runner_parts(
        args.config, args.teacher_ckpt, args.checkpoint, seed=args.seed,
        work_dir=osp.join(REPO, 'work_dirs', 'diagnose_gradients'))
    if loaded:
        print(f'loaded {args.checkpoint} into the {loaded["into"]}; '
              f'{loaded["missing_keys"]} keys not in it')
    model.train()
    if args.probe:
        if args.batches < 2:
            raise SystemExit('--probe needs --batches >= 2')
        return print_linear_probe(model, loader, args.batches,
                                  args.ridge)
    model.distiller.student_grad_scale = args.grad_scale
    params = [(n, p) for n, p in model.architecture.named_parameters()
              if p.requires_grad]
    for i, batch in zip(range(args.batches), loader):
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        det, imi = detection_loss(losses), imitation_loss(losses)
        print(f'\nbatch {i}: ' + ', '.join(
            f'{k} {float(v):.4f}' for k, v in losses.items()))
        print_imitation_fit(model.distiller)
        tensors = [p for _, p in params]
        g_det = torch.autograd.grad(det, tensors, retain_graph=True,
                                    allow_unused=True)
        g_imi = torch.autograd.grad(imi, tensors, allow_unused=True)
        blocks = {}
        for (name, p), a, b in zip(params, g_det, g_imi):
            a = torch.zeros_like(p) if a is None else a
            b = torch.zeros_like(p) if b is None else b
            acc = blocks.setdefault('.'.join(name.split('.')[:3]),
                                    [0.0, 0.0, 0.0])
            acc[0] += float(a.pow(2).sum())
            acc[1] += float(b.pow(2).sum())
            acc[2] += float((a * b).sum())
        print('| block | detection grad | imitation grad | ratio | cosine |')
        print('| --- | --- | --- | --- | --- |')
        for name, (dd, ii, di) in blocks.items():
            if ii == 0:
                continue  # the head: no imitation gradient
            ratio = (ii / dd)**0.5 if dd else float('inf')
            cos = di / ((dd * ii)**0.5 + 1e-30)
            print(f'| {name} | {dd**0.5:.3e} | {ii**0.5:.3e} | '
                  f'{ratio:.2f} | {cos:+.2f} |')


if __name__ == '__main__':
    main()
