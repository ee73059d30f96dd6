"""Train a detector or a distillation config with mmengine's Runner.

    python tools/train.py configs/fgd_yolov5s_from_l.py \
        [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...] \
        [--launcher {none,pytorch,slurm,mpi}]

The same CLI as mmdet/mmyolo/mmrazor's ``tools/train.py``; the logic is
mmengine's (``Runner.from_cfg``). Importing ``fgd_mmrazor`` first makes
mmrazor importable on torch 2.x and registers this project's modules.
"""
import argparse

import fgd_mmrazor  # noqa: F401  (compat shim + registration, first)
from fgd_mmrazor.engine.cli_config import (add_cfg_options, init_cpu_dist,
                                           load_cli_cfg, parse_launcher_args,
                                           prepare_cfg)
from fgd_mmrazor.engine.train_set import check_train_set
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work_dir')
    add_cfg_options(parser)
    return parse_launcher_args(parser)


def main():
    args = parse_args()
    cfg = load_cli_cfg(args.config, args.cfg_options, args.launcher,
                       args.work_dir)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    prepare_cfg(cfg, amp=args.amp)
    init_cpu_dist(cfg)
    runner = Runner.from_cfg(cfg)
    check_train_set(runner)  # a clear error for an empty train set
    runner.train()


if __name__ == '__main__':
    main()
