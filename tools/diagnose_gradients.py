"""Compare the detection and the imitation gradients of a distillation
config, block by block of the student.

    python tools/diagnose_gradients.py CONFIG --teacher-ckpt T \
        [--checkpoint CKPT] [--batches 2] [--grad-scale 1.0] \
        [--cfg-options k=v ...]

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
it explains on the last batch (``fgd_mmrazor.analysis.gradients``). It
needs no adapter, so the same probe compares a student trained alone with
a distilled one: how much of the teacher's feature near the objects each
student already carries.

``--amp-compare`` instead measures what mixed precision does to the
imitation: one step on a synthetic batch (``--batch`` images of ``--img``
px with ``--boxes`` random boxes each) under autocast (``--amp-dtype``,
on ``--device``) against the same step in fp32, and prints the relative
differences of the imitation losses and of the imitation gradients of the
adapters and of the student. It needs no data; without ``--teacher-ckpt``
the teacher is untrained:

    python tools/diagnose_gradients.py \
        configs/demo/fgd_yolov5n_from_s_trees.py --amp-compare --img 160
"""
import argparse
import os.path as osp

from fgd_mmrazor.analysis.gradients import (amp_differences,
                                            block_gradients, imitation_fit,
                                            linear_probe)
from fgd_mmrazor.analysis.models import build_distill_runner_parts
from fgd_mmrazor.engine.cli_config import add_cfg_options


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--teacher-ckpt',
                        help='the teacher (required but for --amp-compare)')
    parser.add_argument('--checkpoint')
    parser.add_argument('--batches', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed of the run (initial weights, '
                        'augmentation)')
    parser.add_argument('--probe', action='store_true',
                        help='print the held-out linear-probe explained '
                        'variance per level instead of the gradients')
    parser.add_argument('--ridge', type=float, default=1e-3,
                        help='ridge penalty of --probe (relative to the '
                        'mean variance of the student\'s channels)')
    parser.add_argument(
        '--grad-scale', type=float, default=1.0,
        help='FGDDistiller.student_grad_scale (1: the plain method)')
    parser.add_argument('--amp-compare', action='store_true',
                        help='print how much autocast changes the imitation '
                        'losses and gradients of one step (synthetic batch)')
    parser.add_argument('--amp-dtype', default='bfloat16',
                        choices=['bfloat16', 'float16'])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--img', type=int, default=160)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--boxes', type=int, default=20)
    parser.add_argument('--work-dir',
                        default=osp.join('work_dirs', 'diagnose_gradients'))
    add_cfg_options(parser)
    return parser.parse_args()


def amp_compare(args) -> None:
    import torch

    from fgd_mmrazor.analysis.benchmark import make_batch
    from fgd_mmrazor.analysis.models import build_algorithm, load_config
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    torch.manual_seed(args.seed)
    model = build_algorithm(cfg, args.teacher_ckpt, device=args.device)
    inputs, samples = make_batch(argparse.Namespace(
        batch=args.batch, img=args.img, device=args.device,
        box_sizes='uniform', step_boxes=args.boxes))

    def make_data():
        return model.data_preprocessor(
            dict(inputs=inputs * 255, data_samples=samples()), True)

    res = amp_differences(model, make_data, getattr(torch, args.amp_dtype),
                          args.device)
    print(f'{args.amp_dtype} autocast against fp32, one step, batch '
          f'{args.batch} at {args.img} px ({args.device}):')
    print('| quantity | relative difference |')
    print('| --- | --- |')
    print(f'| imitation losses (largest over the levels) | '
          f'{res["imitation_losses"]:.2%} |')
    print(f'| adapter gradients | {res["adapter_grads"]:.2%} |')
    print(f'| student gradients (of the imitation) | '
          f'{res["student_grads"]:.2%} |')
    print(f'| student gradients (of the detection losses, for comparison) '
          f'| {res["student_detection_grads"]:.2%} |')


def main():
    args = parse_args()
    if args.amp_compare:
        return amp_compare(args)
    if not args.teacher_ckpt:
        raise SystemExit('--teacher-ckpt is required')
    _, model, loader, loaded = build_distill_runner_parts(
        args.config, args.teacher_ckpt, args.checkpoint, seed=args.seed,
        work_dir=args.work_dir, cfg_options=args.cfg_options)
    if loaded:
        print(f'loaded {args.checkpoint} into the {loaded["into"]}; '
              f'{loaded["missing_keys"]} keys not in it')
    model.train()
    if args.probe:
        if args.batches < 2:
            raise SystemExit('--probe needs --batches >= 2')
        print('| level | masked cells (fit / held out) | linear probe, '
              'explained variance (held out) |')
        print('| --- | --- | --- |')
        for row in linear_probe(model, loader, args.batches, args.ridge):
            print(f'| {row["level"]} | {row["cells"][0]} / '
                  f'{row["cells"][1]} | {row["explained"]:+.2f} |')
        return
    model.distiller.student_grad_scale = args.grad_scale
    for i, batch in zip(range(args.batches), loader):
        losses = model(**model.data_preprocessor(batch, True), mode='loss')
        print(f'\nbatch {i}: ' + ', '.join(
            f'{k} {float(v):.4f}' for k, v in losses.items()))
        print('| level | masked cells | teacher std there | explained '
              'variance |')
        print('| --- | --- | --- | --- |')
        for row in imitation_fit(model.distiller):
            print(f'| {row["level"]} | {row["cells"]} | {row["std"]:.3f} | '
                  f'{row["explained"]:+.2f} |')
        print('| block | detection grad | imitation grad | ratio | cosine |')
        print('| --- | --- | --- | --- | --- |')
        for name, g in block_gradients(model, losses).items():
            print(f'| {name} | {g["detection"]:.3e} | {g["imitation"]:.3e} '
                  f'| {g["ratio"]:.2f} | {g["cosine"]:+.2f} |')


if __name__ == '__main__':
    main()
