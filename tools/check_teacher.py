"""Pre-flight check of a teacher before distilling: is there anything to
transfer, and at which loss_weight?

    python tools/check_teacher.py CONFIG --teacher-ckpt T \
        [--student-ckpt S] [--batches 8] [--out result.json] \
        [--cfg-options k=v ...]

CONFIG is a distillation config; S is the student trained alone (e.g.
``python tools/train.py`` on the student's plain config for a short
schedule). On a few training batches it prints, per imitated level, the
held-out linear probe (how much of the teacher's features at the imitated
cells the student's own features explain: the lower, the more there is to
transfer), the mask coverage, the imitation/detection gradient ratio and
cosine at the configured loss_weight with the adapters fitted as in the
warm-up, a suggested loss_weight and a one-line verdict
(``fgd_mmrazor.analysis.teacher_check``). A few minutes on a CPU.
"""
import argparse
import json

import fgd_mmrazor  # noqa: F401  (compat shim + registration, first)
from fgd_mmrazor.engine.cli_config import add_cfg_options


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='distillation config')
    parser.add_argument('--teacher-ckpt', required=True)
    parser.add_argument('--student-ckpt',
                        help='the student trained alone (plain or '
                        'distillation checkpoint)')
    parser.add_argument('--batches', type=int, default=8,
                        help='training batches read (the last 2 are held '
                        'out for the probe)')
    parser.add_argument('--fit-steps', type=int,
                        help='adapter-only steps (default: the config\'s '
                        'AdapterWarmupHook.adapter_only_iters)')
    parser.add_argument('--target-ratio', type=float,
                        help='gradient ratio the suggested loss_weight aims '
                        'at')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/check_teacher')
    parser.add_argument('--out', help='also write the result as JSON')
    add_cfg_options(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    from fgd_mmrazor.analysis import check_teacher, format_report
    from fgd_mmrazor.analysis.teacher_check import TARGET_RATIO
    result = check_teacher(
        args.config,
        args.teacher_ckpt,
        args.student_ckpt,
        num_batches=args.batches,
        fit_steps=args.fit_steps,
        target_ratio=args.target_ratio or TARGET_RATIO,
        seed=args.seed,
        work_dir=args.work_dir,
        cfg_options=args.cfg_options)
    print(format_report(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
