"""Evaluate a checkpoint with mmengine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] \
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

CONFIG is a plain detector config (e.g. the student's mmyolo config with a
checkpoint from ``tools/export_student.py``) or a distillation config with
its own checkpoint (the student is evaluated; the teacher's weights come
from the checkpoint, so ``teacher_ckpt`` is not needed).
"""
import argparse

import fgd_mmrazor  # noqa: F401  (compat shim + registration, first)
from fgd_mmrazor.engine.cli_config import (add_cfg_options, init_cpu_dist,
                                           load_cli_cfg, parse_launcher_args,
                                           prepare_cfg)
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument(
        '--out', help='dump predictions to a pickle file (.pkl)')
    add_cfg_options(parser)
    return parse_launcher_args(parser)


def main():
    args = parse_args()
    cfg = load_cli_cfg(args.config, args.cfg_options, args.launcher,
                       args.work_dir)
    cfg.load_from = args.checkpoint
    prepare_cfg(cfg, for_test=True)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpDetResults', out_file_path=args.out))
    init_cpu_dist(cfg)
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
