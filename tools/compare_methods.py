"""Compare distillation methods on one pair and one dataset, paired by seed.

    python tools/compare_methods.py [--methods fgfi cwd pkd mgd ...] \
        [--seeds 3 4 5 6 7] [--teacher-ckpt work_dirs/demo/teacher.pth] \
        [--jobs 2] [--work-dir work_dirs/compare]

Trains the student alone and distilled by each method for each seed (the
same seed, initial weights and thread count), evaluates all of them with
COCO mAP and writes ``compare.md``, ``compare.json`` and ``compare.png``
into the work dir. Each method's loss weight is scaled by one gradient rule
(``fgd_mmrazor/experiments/compare.py``). A finished run is not trained
again: run the same command to resume, or with more seeds to extend.

Without ``--student-config`` it runs on the trees demo (the data is
prepared and cached as by ``tools/run_demo.py``, whose teacher checkpoint
it uses). A method is a demo name (``fgfi``, ``fgfi_whole_map``, ``cwd``,
``pkd``, ``mgd``) or ``NAME=CONFIG`` for a distillation config of your own
(docs/compare_methods.md shows one for a COCO-format dataset).

Cross-validated: ``--folds`` runs every (fold, seed) pair, with one
teacher per fold trained on that fold's train set (``--train-teacher``,
the demo's teacher config by default), and reports per fold, per group of
folds and pooled (mean +- s.e. of the paired difference, pairs ahead,
sign-flip p-value). The demo's folds are ``0 1 2 3`` (strips of the
tiled image; 0 is the default split) and ``osbs soap`` (the other NEON
sites); your data's come from ``tools/make_folds.py`` (``--fold-dir``):

    python tools/compare_methods.py --methods fgfi --folds 0 1 2 3 \
        --seeds 8 9 10 11 12 --jobs 2 --threads 1
"""
import argparse
import os
import os.path as osp

import fgd_mmrazor  # noqa: F401  (compat shim + registration, first)
from mmengine.config import DictAction
from mmengine.logging import MMLogger

from fgd_mmrazor.experiments.compare import (DEMO_METHODS, DEMO_STUDENT,
                                             DEMO_TEACHER, compare_methods,
                                             demo_method_configs)
from fgd_mmrazor.experiments.folds import fold_options
from fgd_mmrazor.experiments.runs import REPO, epoch_options

DEMO_EPOCHS = 30  # the demo students' schedule (tools/run_demo.py)
DEMO_TEACHER_EPOCHS = 40  # the demo teacher's (tools/run_demo.py)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Compare distillation methods, paired by seed')
    parser.add_argument(
        '--methods', nargs='+', default=list(DEMO_METHODS),
        help='demo method names or NAME=CONFIG (the first is the reference '
        'of the weight rule); default: all demo methods')
    parser.add_argument('--seeds', nargs='+', type=int,
                        default=[3, 4, 5, 6, 7])
    parser.add_argument(
        '--student-config',
        help='the student trained alone (default: the demo\'s YOLOv5-n)')
    parser.add_argument(
        '--teacher-ckpt',
        default=osp.join(REPO, 'work_dirs', 'demo', 'teacher.pth'),
        help='the teacher checkpoint (default: the demo\'s, written by '
        'tools/run_demo.sh)')
    parser.add_argument(
        '--teacher-config',
        help='a plain config of the teacher, to evaluate it too (default '
        'for the demo: configs/demo/yolov5_mnv2_trees.py)')
    parser.add_argument('--epochs', type=int,
                        help='student epochs (default: the configs\', 30 '
                        'for the demo)')
    parser.add_argument('--work-dir',
                        default=osp.join(REPO, 'work_dirs', 'compare'))
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once')
    parser.add_argument('--threads', type=int,
                        help='torch threads per run (default: CPUs / jobs)')
    parser.add_argument('--no-weight-rule', action='store_true',
                        help='use the configs\' weights unchanged')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='overrides merged into every config (e.g. the dataset)')
    parser.add_argument('--force', action='store_true',
                        help='retrain and re-evaluate every run')
    parser.add_argument(
        '--folds', nargs='+',
        help='cross-validate over these folds (the demo: 0 1 2 3 osbs '
        'soap; with --fold-dir: its folds, 0 1 ...)')
    parser.add_argument(
        '--fold-dir', help='folds of your data, from tools/make_folds.py')
    parser.add_argument(
        '--train-teacher',
        help='with --folds: train one teacher per fold with this config '
        '(default for the demo: configs/demo/yolov5_mnv2_trees.py); '
        'without it --teacher-ckpt serves every fold')
    parser.add_argument('--teacher-epochs', type=int,
                        help='epochs of --train-teacher (demo: 40)')
    return parser.parse_args()


def fold_setup(args, demo: bool):
    """``(folds, fold_groups, teacher_train)`` of the command line."""
    if not args.folds:
        return None, None, None
    if args.fold_dir:
        folds = {}
        for fold in args.folds:
            paths = [osp.join(args.fold_dir, fold, f'{s}.json')
                     for s in ('train', 'val')]
            if not all(osp.isfile(p) for p in paths):
                raise SystemExit(f'fold {fold}: no {paths[0]} (run '
                                 'tools/make_folds.py first)')
            folds[fold] = fold_options(*map(osp.abspath, paths))
        groups = None
    elif demo:
        from fgd_mmrazor.demo import trees
        root = osp.join(REPO, 'data', 'trees')
        folds = {f: fold_options(*(trees.fold_paths(root, f)[s]
                                   for s in ('train', 'val')),
                                 img_prefix='')
                 for f in args.folds}
        groups = dict(strips=list(trees.STRIP_FOLDS),
                      sites=list(trees.SITE_FOLDS))
    else:
        raise SystemExit('--folds needs --fold-dir with --student-config')
    config = args.train_teacher or (DEMO_TEACHER if demo else None)
    teacher_train = None
    if config:
        epochs = args.teacher_epochs or (DEMO_TEACHER_EPOCHS if demo
                                         else None)
        options = {'randomness.seed': 0}
        if epochs:
            options.update(epoch_options(epochs))
        teacher_train = dict(config=osp.abspath(config), options=options)
    return folds, groups, teacher_train


def main():
    args = parse_args()
    demo = args.student_config is None
    methods, labels = {}, {}
    for item in args.methods:
        name, sep, path = item.partition('=')
        if sep:
            methods[name] = path
        else:
            methods.update(demo_method_configs([name]))
            labels[name] = DEMO_METHODS[name][1]
    options = dict(args.cfg_options)
    epochs = args.epochs or (DEMO_EPOCHS if demo else None)
    if epochs:
        options.update(epoch_options(epochs))
    if demo:
        from fgd_mmrazor.demo.trees import prepare_trees
        prepare_trees(osp.join(REPO, 'data', 'trees'))
    folds, fold_groups, teacher_train = fold_setup(args, demo)
    if teacher_train and demo:
        from fgd_mmrazor.demo.pretrained import prepare_mobilenetv2
        prepare_mobilenetv2(
            osp.join(REPO, 'data', 'pretrained', 'mobilenetv2_coco.pth'))
    if not teacher_train and not osp.isfile(args.teacher_ckpt):
        raise SystemExit(f'no teacher checkpoint {args.teacher_ckpt}: run '
                         'bash tools/run_demo.sh first, or give '
                         '--teacher-ckpt')

    os.makedirs(args.work_dir, exist_ok=True)
    logger = MMLogger.get_instance(
        'compare_methods', log_file=osp.join(args.work_dir, 'compare.log'))
    report = compare_methods(
        methods,
        student_config=args.student_config or DEMO_STUDENT,
        teacher_ckpt=None if teacher_train else args.teacher_ckpt,
        seeds=args.seeds,
        work_dir=args.work_dir,
        options=options,
        weight_rule=not args.no_weight_rule,
        jobs=args.jobs,
        threads=args.threads,
        teacher_config=args.teacher_config or (DEMO_TEACHER if demo
                                               else None),
        labels=labels,
        force=args.force,
        logger=logger,
        folds=folds,
        fold_groups=fold_groups,
        teacher_train=teacher_train)
    logger.info(f'wrote {osp.join(args.work_dir, "compare.md")} '
                f'({report["wall_s"]["this_invocation"] / 60:.1f} min)')


if __name__ == '__main__':
    main()
