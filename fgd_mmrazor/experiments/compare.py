"""Which distillation helps on this pair and this data? A paired comparison.

:func:`compare_methods` trains the student alone and distilled by each
method, for each seed, and evaluates all of them with COCO mAP:

* **paired**: for a seed, every run uses that seed (the same initial
  student weights: ``FGDDistill`` builds the student before anything
  else), the same thread count and the same schedule;
* **one weight rule**: a method's loss weight is the one its paper or
  MMRazor's config gives, scaled so that, when its imitation gradient
  reaches the student (after the adapters' warm-up), that gradient on the
  student's backbone and neck is the same fraction of the detection
  gradient as the reference method's (FGFI at its own config's weight).
  The fraction is measured once, on seed 0's first training batches, with
  the pre-flight check's gradient measurement
  (:func:`~fgd_mmrazor.analysis.teacher_check.gradient_ratio`); the
  imitation gradient is linear in the weight, so one measurement gives the
  weight (:func:`calibrate`);
* **resumable**: a finished run (trained and evaluated with the same
  settings) is not run again;
* **statistics**: per method the mean +- s.e. over seeds of mAP and mAP50,
  and the mean +- s.e. of the paired difference to the student alone,
  the pairs ahead and a sign-flip p-value (:mod:`.stats`); the time per
  training step and the peak memory;
* **folds** (optional): the same on each of several train/val splits
  (``folds``: config overrides per fold, e.g. from
  :func:`~.folds.fold_options`), with one teacher per fold trained on
  that fold's train set only (``teacher_train``) or given per fold; the
  statistics per fold and pooled over every (fold, seed) pair, and per
  group of folds (``fold_groups``: e.g. the strips of one image and the
  held-out sites).

It writes ``compare.json``, ``compare.md`` and ``compare.png`` (bars with
error bars) into the work dir; ``tools/compare_methods.py`` is its CLI.
"""
import copy
import json
import os
import os.path as osp
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Dict, List, Optional, Sequence

import numpy as np

from .runs import (REPO, evaluate_checkpoint, gpu_slots, run_settings,
                   train_run, visible_gpus)
from .stats import format_mean_se, mean_se, pooled_difference

__all__ = [
    'DEMO_METHODS', 'DEMO_STUDENT', 'DEMO_TEACHER', 'loss_weight_key',
    'calibrate', 'compare_methods', 'summarize', 'format_markdown',
    'plot_comparison', 'demo_method_configs'
]

_DEMO = osp.join(REPO, 'configs', 'demo')
DEMO_STUDENT = osp.join(_DEMO, 'yolov5_n_trees.py')
DEMO_TEACHER = osp.join(_DEMO, 'yolov5_mnv2_trees.py')
# The methods of the trees demo (the first is the reference of the weight
# rule) and their configs.
DEMO_METHODS = dict(
    fgfi=('fgd_yolov5n_from_mnv2_trees.py',
          'FGFI, imitation mask (this project)'),
    fgfi_whole_map=('methods/fgfi_whole_map_yolov5n_from_mnv2_trees.py',
                    'FGFI on the whole map (no mask)'),
    cwd=('methods/cwd_yolov5n_from_mnv2_trees.py',
         'CWD (channel-wise divergence)'),
    pkd=('methods/pkd_yolov5n_from_mnv2_trees.py',
         'PKD (Pearson correlation)'),
    mgd=('methods/mgd_yolov5n_from_mnv2_trees.py',
         'MGD (masked generative)'),
)
ALONE = 'alone'


def demo_method_configs(names: Optional[Sequence[str]] = None) -> dict:
    """``{name: config path}`` of the demo's methods (all by default)."""
    names = list(names or DEMO_METHODS)
    unknown = [n for n in names if n not in DEMO_METHODS]
    if unknown:
        raise KeyError(f'unknown demo methods {unknown}; known: '
                       f'{sorted(DEMO_METHODS)} (or give NAME=CONFIG)')
    return {n: osp.join(_DEMO, DEMO_METHODS[n][0]) for n in names}


def loss_weight_key(loss_cfg: dict) -> str:
    """The argument of a distillation loss that scales it: ``alpha_mgd``
    for MMRazor's ``MGDLoss``, ``loss_weight`` for the others."""
    return 'alpha_mgd' if 'alpha_mgd' in loss_cfg else 'loss_weight'


def _log(logger, msg: str) -> None:
    if logger is None:
        print(f'[compare] {msg}', flush=True)
    else:
        logger.info(msg)


def _dump(cfg, path: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path


def calibrate(config: str,
              teacher_ckpt: str,
              seed: int = 0,
              num_batches: int = 8,
              grad_batches: int = 2,
              fit_steps: Optional[int] = None) -> dict:
    """The imitation/detection gradient ratio of a distillation config at
    its own loss weight, when the imitation reaches the student.

    The adapters (connectors) are first fitted alone for the config's
    ``AdapterWarmupHook.adapter_only_iters`` steps (or ``fit_steps``), as
    in training; the student is the freshly initialised one of ``seed``.

    Returns:
        dict: ``weight_key``, ``weight`` (the config's), ``ratio``,
        ``cosine``, ``fit_steps``.
    """
    import torch

    from ..analysis.models import build_distill_runner_parts
    from ..analysis.teacher_check import (adapter_only_iters, base_lr,
                                          fit_adapters, gradient_ratio,
                                          read_batches)
    torch.manual_seed(seed)
    cfg, model, loader, _ = build_distill_runner_parts(
        config, teacher_ckpt, None, seed,
        work_dir=osp.join(osp.dirname(config), 'calibration_work_dir'))
    model.train()
    batches = read_batches(loader, num_batches)
    steps = adapter_only_iters(cfg) if fit_steps is None else fit_steps
    fit_adapters(model, batches, steps, base_lr(cfg))
    grads = gradient_ratio(model, batches[:grad_batches])
    loss = cfg.model.distiller.loss
    key = loss_weight_key(loss)
    return dict(weight_key=key, weight=float(loss[key]),
                ratio=grads['ratio'], cosine=grads['cosine'],
                fit_steps=steps)


def _read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_json(path: str, data) -> None:
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)


def _run_stats(run_dir: str) -> dict:
    """Median seconds per training step and the peak CUDA memory (MB) that
    mmengine logged, from the run's ``scalars.json``."""
    from ..demo.report import read_scalars
    rows = [r for r in read_scalars(run_dir) if 'time' in r]
    out = dict(step_s=float(np.median([r['time'] for r in rows]))
               if rows else float('nan'))
    memory = [r['memory'] for r in rows if 'memory' in r]
    out['cuda_memory_mb'] = float(max(memory)) if memory else None
    return out


def compare_methods(methods: Dict[str, str],
                    student_config: str,
                    teacher_ckpt,
                    seeds: Sequence[int],
                    work_dir: str,
                    options: Optional[dict] = None,
                    weight_rule: bool = True,
                    reference: Optional[str] = None,
                    jobs: int = 1,
                    threads: Optional[int] = None,
                    teacher_config: Optional[str] = None,
                    labels: Optional[Dict[str, str]] = None,
                    force: bool = False,
                    logger=None,
                    folds: Optional[Dict[str, dict]] = None,
                    fold_groups: Optional[Dict[str, List[str]]] = None,
                    teacher_train: Optional[dict] = None) -> dict:
    """Train and evaluate the student alone and each method, per seed (and
    per fold).

    Args:
        methods (dict): ``{name: distillation config}``, in table order.
        student_config (str): The student's own config (trained alone;
            evaluates the exported students).
        teacher_ckpt (str | dict | None): The teacher's checkpoint (plain
            or not); with folds, ``{fold: checkpoint}`` or one for all
            (its teacher then saw other folds' val images). None with
            ``teacher_train``.
        seeds (Sequence[int]): Random seeds; each seed is one pair set.
        work_dir (str): Where runs, configs and the outputs go.
        options (dict, optional): Config overrides merged into every
            config (``--cfg-options``), e.g. the epochs or the dataset.
        weight_rule (bool): Scale each method's weight by the gradient
            rule (see the module's docstring). Defaults to True.
        reference (str, optional): The method whose gradient ratio the
            others are matched to. Defaults to the first method.
        jobs (int): Runs trained at once.
        threads (int, optional): Torch threads of each run. Defaults to
            the CPU count divided by ``jobs``.
        teacher_config (str, optional): Evaluate the teacher too (a plain
            config of it), for the table's reference row (per fold).
        labels (dict, optional): Display names of the methods.
        force (bool): Retrain and re-evaluate everything.
        logger: An ``MMLogger`` (print without one).
        folds (dict, optional): ``{fold: config overrides}``; every run of
            a fold gets its overrides. None: one dataset, as configured.
        fold_groups (dict, optional): ``{group: [folds]}`` pooled apart.
        teacher_train (dict, optional): ``dict(config=..., options={...})``:
            train one teacher per fold on its train set (``options``: its
            epochs, seed ...), cached in ``<work_dir>/teachers``.

    Returns:
        dict: What ``compare.json`` holds (see :func:`summarize`), with
        ``folds`` (per fold), ``groups`` and ``teachers`` when folded.
    """
    from mmengine.config import Config
    os.makedirs(work_dir, exist_ok=True)
    options = dict(options or {})
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    env = {k: str(threads) for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    labels = dict(labels or {})
    reference = reference or next(iter(methods))
    if reference not in methods:
        raise KeyError(f'the reference {reference!r} is not a method')
    fold_opts = dict(folds) if folds else {None: {}}
    start = time.time()
    pool = _Pool(jobs, env, force, work_dir, logger)

    # 0. The teacher of each fold.
    teachers = _fold_teachers(teacher_ckpt, teacher_train, fold_opts,
                              options, pool)

    # 1. The configs every run trains: overrides merged in, dumped.
    configs = {}
    for fold, extra in fold_opts.items():
        configs[fold] = {}
        for name, path in [(ALONE, student_config), *methods.items()]:
            cfg = Config.fromfile(path)
            cfg.merge_from_dict(copy.deepcopy(options))
            cfg.merge_from_dict(copy.deepcopy(extra))
            if name != ALONE:
                cfg.model.teacher_ckpt = osp.abspath(teachers[fold])
            configs[fold][name] = cfg
    base_dir = osp.join(work_dir, 'configs')

    # 2. The weights: one gradient rule for all methods (on the first
    # fold), the same weights in every fold.
    first = next(iter(fold_opts))
    calibration, weights = {}, {}
    if weight_rule:
        calibration, weights = _weight_rule(
            configs[first], methods, reference, teachers[first], threads,
            base_dir, osp.join(work_dir, 'calibration.json'), force,
            logger)
        for fold in fold_opts:
            for name, weight in weights.items():
                configs[fold][name].model.distiller.loss.update(weight)

    # 3. The runs, fold by fold and seed by seed (a pair is complete
    # early).
    runs = []
    for fold in fold_opts:
        sub = '' if fold is None else f'fold{fold}'
        for seed in seeds:
            for name, cfg in configs[fold].items():
                run_cfg = copy.deepcopy(cfg)
                run_cfg.randomness = dict(seed=int(seed))
                path = _dump(run_cfg, osp.join(base_dir, sub,
                                               f'{name}_seed{seed}.py'))
                runs.append(dict(name=name, seed=int(seed), fold=fold,
                                 config=path,
                                 dir=osp.join(work_dir, 'runs', sub,
                                              f'{name}_seed{seed}')))
    results: List[dict] = []
    todo = []
    for run in runs:
        found = None if force else _read_json(
            osp.join(run['dir'], 'result.json'))
        settings = run_settings(run['config'], [])
        if found and found.get('settings') == settings and found.get(
                'threads') == threads:
            results.append(dict(found, fold=run['fold']))
        else:
            todo.append(dict(run, settings=settings))
    per = f'{len(configs[first])} per seed x {len(seeds)} seeds' + (
        f' x {len(fold_opts)} folds' if folds else '')
    _log(logger, f'{len(runs)} runs ({per}): {len(runs) - len(todo)} done, '
         f'{len(todo)} to train, {jobs} at a time, {threads} thread(s) each')

    runs_start = time.time()

    def finish(run, trained):
        result = _evaluate(run, trained, student_config,
                           {**options, **fold_opts[run['fold']]}, threads)
        results.append(result)
        where = '' if run['fold'] is None else f'fold {run["fold"]} '
        return (f'{run["name"]} {where}seed {run["seed"]}: bbox mAP '
                f'{result["bbox_mAP"]:.4f}')

    trained_s = pool.train_all(todo, finish)

    teacher_metrics = {}
    if teacher_config:
        for fold in fold_opts:
            sub = 'eval_teacher' + ('' if fold is None else f'_fold{fold}')
            teacher_metrics[fold] = evaluate_checkpoint(
                teacher_config, teachers[fold], osp.join(work_dir, sub),
                {**options, **fold_opts[fold]})
    report = _report(results, methods, reference, labels, teacher_metrics,
                     fold_opts if folds else None, fold_groups)
    report.update(
        seeds=[int(s) for s in seeds],
        settings=dict(
            student_config=osp.abspath(student_config),
            methods={k: osp.abspath(v) for k, v in methods.items()},
            teacher_ckpt={str(f): osp.abspath(t)
                          for f, t in teachers.items()} if folds else
            osp.abspath(teachers[None]),
            teacher_config=teacher_config and osp.abspath(teacher_config),
            teacher_train=teacher_train,
            options=options, folds=folds, weight_rule=weight_rule,
            jobs=jobs, threads=threads),
        calibration={k: {kk: vv for kk, vv in v.items() if kk != 'key'}
                     for k, v in calibration.items() if k in methods},
        weights=weights,
        wall_s=dict(this_invocation=time.time() - start,
                    calibration=runs_start - start,
                    runs=time.time() - runs_start,
                    training_trained_now=trained_s))
    _write_json(osp.join(work_dir, 'compare.json'), report)
    with open(osp.join(work_dir, 'compare.md'), 'w') as f:
        f.write(format_markdown(report))
    plot_comparison(report, osp.join(work_dir, 'compare.png'))
    return report


class _Pool:
    """Trains runs ``jobs`` at a time (each on a GPU of its own where
    there are GPUs) and logs progress."""

    def __init__(self, jobs, env, force, work_dir, logger) -> None:
        self.jobs, self.env, self.force = jobs, env, force
        self.work_dir, self.logger = work_dir, logger
        self.slots = gpu_slots(jobs, visible_gpus())

    def train(self, run: dict) -> dict:
        os.makedirs(run['dir'], exist_ok=True)
        log_file = run['dir'].rstrip('/') + '.log'
        gpu = self.slots.get() if self.slots else None
        try:
            return train_run(run['config'], run['dir'], force=self.force,
                             env=self.env, log_file=log_file, gpu=gpu)
        finally:
            if self.slots:
                self.slots.put(gpu)

    def train_all(self, todo: List[dict], finish) -> float:
        """Train ``todo``; ``finish(run, trained)`` after each (returns a
        line to log). Returns the seconds of training done."""
        trained_s, finished, start = 0.0, 0, time.time()
        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            pending = {pool.submit(self.train, run): run for run in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    run = pending.pop(fut)
                    trained = fut.result()
                    line = finish(run, trained)
                    finished += 1
                    trained_s += trained['wall_s']
                    eta = (time.time() - start) / finished * (
                        len(todo) - finished)
                    _log(self.logger,
                         f'[{finished}/{len(todo)}] {line} (trained in '
                         f'{trained["wall_s"]:.0f} s); ETA '
                         f'{eta / 60:.1f} min')
        return trained_s


def _fold_teachers(teacher_ckpt, teacher_train: Optional[dict],
                   fold_opts: dict, options: dict, pool: _Pool) -> dict:
    """``{fold: teacher checkpoint}``: given, or trained per fold on the
    fold's train set (reused when done)."""
    from mmengine.config import Config
    if teacher_train is None:
        if isinstance(teacher_ckpt, dict):
            missing = [f for f in fold_opts if f not in teacher_ckpt]
            if missing:
                raise KeyError(f'no teacher checkpoint for folds {missing}')
            return {f: teacher_ckpt[f] for f in fold_opts}
        if not teacher_ckpt:
            raise ValueError('give teacher_ckpt or teacher_train')
        return {f: teacher_ckpt for f in fold_opts}
    runs = []
    for fold, extra in fold_opts.items():
        cfg = Config.fromfile(teacher_train['config'])
        cfg.merge_from_dict(copy.deepcopy(extra))
        cfg.merge_from_dict(copy.deepcopy(teacher_train.get('options', {})))
        sub = 'teacher' + ('' if fold is None else f'_fold{fold}')
        runs.append(dict(
            fold=fold, config=_dump(cfg, osp.join(pool.work_dir, 'configs',
                                                  f'{sub}.py')),
            dir=osp.join(pool.work_dir, 'teachers', sub)))
    found = {}

    def finish(run, trained):
        found[run['fold']] = trained['checkpoint']
        return f'teacher of fold {run["fold"]}: {trained["checkpoint"]}'

    pool.train_all(runs, finish)
    return found


def _weight_rule(configs: dict, methods: dict, reference: str,
                 teacher_ckpt: str, threads: int, base_dir: str,
                 calib_file: str, force: bool, logger):
    """The calibration records and ``{method: {weight key: weight}}`` of
    the gradient rule (see the module docstring)."""
    calibration = {} if force else (_read_json(calib_file) or {})
    weights = {}
    for name in [reference] + [m for m in methods if m != reference]:
        path = _dump(configs[name],
                     osp.join(base_dir, f'{name}_calibration.py'))
        key = dict(config_text=configs[name].pretty_text,
                   teacher_ckpt=osp.abspath(teacher_ckpt), threads=threads)
        record = calibration.get(name)
        if record is None or record.get('key') != key:
            _log(logger, f'weight rule: measuring the gradient ratio of '
                 f'{name} ({path})')
            t0 = time.time()
            record = dict(key=key, **calibrate(path, teacher_ckpt))
            record['seconds'] = time.time() - t0
            calibration[name] = record
            _write_json(calib_file, calibration)
        target = calibration[reference]['ratio']
        record['target_ratio'] = target
        record['scaled_weight'] = record['weight'] * target / record['ratio']
        _log(logger, f'weight rule: {name}: {record["weight_key"]} '
             f'{record["weight"]:g} gives ratio {record["ratio"]:.4f} '
             f'-> {record["scaled_weight"]:.4g} (ratio {target:.4f})')
        weights[name] = {record['weight_key']: record['scaled_weight']}
    _write_json(calib_file, calibration)
    return calibration, weights


def _report(results: List[dict], methods: dict, reference: str,
            labels: dict, teacher_metrics: dict, folds: Optional[dict],
            fold_groups: Optional[dict]) -> dict:
    names = [ALONE, *methods]
    labels = {ALONE: 'student alone', **labels}
    if folds is None:
        return summarize(results, names, reference=reference,
                         labels=labels, teacher=teacher_metrics.get(None))
    report = summarize(results, names, reference=reference, labels=labels)
    report['folds'] = {
        str(f): summarize([r for r in results if r.get('fold') == f],
                          names, reference=reference, labels=labels,
                          teacher=teacher_metrics.get(f))['methods']
        for f in folds
    }
    report['teachers'] = {str(f): m for f, m in teacher_metrics.items()}
    groups = dict(fold_groups or {})
    groups = {g: [f for f in fs if f in folds] for g, fs in groups.items()}
    report['groups'] = {
        g: summarize([r for r in results if r.get('fold') in fs], names,
                     reference=reference, labels=labels)['methods']
        for g, fs in groups.items() if fs
    }
    report['fold_groups'] = {g: fs for g, fs in groups.items() if fs}
    if teacher_metrics:
        report['gap_closed'] = _gap_closed(results, methods,
                                           teacher_metrics)
    return report


def _gap_closed(results: List[dict], methods: dict,
                teacher_metrics: dict) -> dict:
    """Per method: the mean paired difference over the mean teacher -
    student-alone gap, over the same (fold, seed) pairs."""
    alone = {_pair(r): r for r in results if r['name'] == ALONE}
    out = {}
    for name in methods:
        diffs, gaps = [], []
        for r in results:
            key = _pair(r)
            if r['name'] != name or key not in alone or \
                    r.get('fold') not in teacher_metrics:
                continue
            base = alone[key]['bbox_mAP']
            diffs.append(r['bbox_mAP'] - base)
            gaps.append(teacher_metrics[r.get('fold')]['bbox_mAP'] - base)
        if diffs and np.mean(gaps) > 0:
            out[name] = float(np.mean(diffs) / np.mean(gaps))
    return out


def _pair(result: dict) -> str:
    """A run's pair: its seed, or ``fold/seed``."""
    fold = result.get('fold')
    return str(result['seed']) if fold is None else \
        f'{fold}/{result["seed"]}'


def _evaluate(run: dict, trained: dict, student_config: str,
              options: dict, threads: int) -> dict:
    """Export (a distillation checkpoint's student) and evaluate a run;
    its ``result.json``."""
    from ..utils.export import export_student
    plain = osp.join(run['dir'], 'student.pth')
    export_student(trained['checkpoint'], plain)
    metrics = evaluate_checkpoint(student_config, plain,
                                  osp.join(run['dir'], 'eval'), options)
    stats = _run_stats(run['dir'])
    result = dict(
        name=run['name'], seed=run['seed'], fold=run.get('fold'),
        settings=run['settings'],
        threads=threads, **metrics, train_s=trained['wall_s'],
        peak_rss_mb=trained['peak_rss_mb'], **stats)
    _write_json(osp.join(run['dir'], 'result.json'), result)
    return result


def summarize(results: Sequence[dict], names: Sequence[str],
              reference: Optional[str] = None,
              labels: Optional[Dict[str, str]] = None,
              teacher: Optional[dict] = None) -> dict:
    """Per-method statistics of run results (dicts with ``name``, ``seed``,
    ``bbox_mAP``, ``bbox_mAP_50``, ``step_s``, ``peak_rss_mb``).

    Returns:
        dict: ``methods``: ``{name: dict(label, seeds, bbox_mAP,
        bbox_mAP_50 (mean_se), minus_alone (dict of paired_difference per
        metric; not for the student alone), step_s, peak_rss_mb,
        cuda_memory_mb, values)}``; ``reference``; ``teacher``.
    """
    labels = dict(labels or {})
    by_name = {n: {} for n in names}
    for r in results:
        if r['name'] in by_name:
            by_name[r['name']][_pair(r)] = r
    alone = by_name.get(ALONE, {})
    out = {}
    for name in names:
        runs = by_name[name]
        seeds = sorted(runs, key=_pair_order)
        entry = dict(label=labels.get(name, name), seeds=seeds)
        for metric in ('bbox_mAP', 'bbox_mAP_50'):
            entry[metric] = mean_se([runs[s][metric] for s in seeds])
        if name != ALONE:
            entry['minus_alone'] = {
                metric: pooled_difference(
                    {s: runs[s][metric] for s in seeds},
                    {s: r[metric] for s, r in alone.items()})
                for metric in ('bbox_mAP', 'bbox_mAP_50')
            }
        steps = [runs[s]['step_s'] for s in seeds
                 if np.isfinite(runs[s].get('step_s', float('nan')))]
        entry['step_s'] = float(np.mean(steps)) if steps else float('nan')
        entry['peak_rss_mb'] = max(
            (runs[s]['peak_rss_mb'] for s in seeds), default=float('nan'))
        cuda = [runs[s]['cuda_memory_mb'] for s in seeds
                if runs[s].get('cuda_memory_mb') is not None]
        entry['cuda_memory_mb'] = max(cuda) if cuda else None
        entry['values'] = {s: runs[s]['bbox_mAP'] for s in seeds}
        out[name] = entry
    return dict(methods=out, reference=reference, teacher=teacher)


def _pair_order(key: str):
    fold, _, seed = key.rpartition('/')
    return (fold, int(seed))


def _ahead(diff: dict) -> str:
    return f'{diff["ahead"]}/{diff["n"]}' if 'ahead' in diff else ''


def _p(diff: dict) -> str:
    return f'{diff["p"]:.3g}' if np.isfinite(diff.get('p', np.nan)) else ''


def format_markdown(report: dict) -> str:
    """``compare.md``: the table (per fold and pooled when folded), the
    weights and the settings."""
    methods = report['methods']
    weights = report.get('weights', {})
    calib = report.get('calibration', {})
    folded = 'folds' in report
    unit = '(fold, seed) pairs' if folded else 'seeds'
    lines = [
        '# Distillation methods compared', '',
        f'Seeds {", ".join(map(str, report.get("seeds", [])))}'
        + (f'; folds {", ".join(report["folds"])}' if folded else '')
        + f'; every run with '
        f'{report.get("settings", {}).get("threads", "?")} torch '
        f'thread(s). mAP: COCO bbox mAP on the val set, mean +- standard '
        f'error over the {unit}; "minus alone": the paired difference to '
        f'the student alone of the same {unit[:-1]}, mean +- standard '
        'error; "ahead": pairs where the method beats the student alone; '
        'p: two-sided sign-flip permutation p-value of the mean '
        'difference.', ''
    ]
    if report.get('teacher'):
        t = report['teacher']
        lines += [f'Teacher: bbox mAP {t["bbox_mAP"]:.4f}, mAP50 '
                  f'{t["bbox_mAP_50"]:.4f}.', '']
    if folded:
        lines += ['Pooled over every fold and seed:', '']
    lines += _method_table(methods, weights, calib)
    if report.get('gap_closed'):
        lines += ['', 'Gap closed (mean paired difference over the mean '
                  'teacher - student alone gap of the same pairs): ' +
                  ', '.join(f'{methods[n]["label"]} {v:+.1%}'
                            for n, v in report['gap_closed'].items())]
    for title, table in ((f'Folds {", ".join(fs)} ({group})',
                          report['groups'][group])
                         for group, fs in report.get('fold_groups',
                                                     {}).items()):
        lines += ['', f'{title}:', ''] + _method_table(table, {}, {})
    if folded:
        lines += ['', 'Per fold:', '',
                  '| fold | teacher mAP | method | bbox mAP | mAP minus '
                  'alone | ahead | p |', '| --- | --- | --- | --- | --- | '
                  '--- | --- |']
        for fold, table in report['folds'].items():
            teacher = report.get('teachers', {}).get(fold)
            t = f'{teacher["bbox_mAP"]:.4f}' if teacher else ''
            for name, m in table.items():
                diff = m.get('minus_alone', {}).get('bbox_mAP')
                lines.append(
                    f'| {fold} | {t} | {m["label"]} | '
                    f'{format_mean_se(m["bbox_mAP"])} | ' +
                    (f'{format_mean_se(diff, sign=True)} | {_ahead(diff)} '
                     f'| {_p(diff)} |' if diff else ' | | |'))
    if calib:
        ref = report['reference']
        lines += [
            '', 'Weights: each method\'s config weight scaled so that its '
            'imitation/detection gradient ratio on the student\'s backbone '
            f'and neck equals {ref}\'s at its config weight '
            f'({calib[ref]["ratio"]:.4f}), measured after '
            f'{calib[ref]["fit_steps"]} adapter-only steps on seed 0\'s '
            'first training batches' +
            (' of the first fold' if folded else '') + '.', '',
            '| method | config weight | gradient ratio there | cosine | '
            'scaled weight |', '| --- | --- | --- | --- | --- |'
        ]
        for name, c in calib.items():
            lines.append(
                f'| {methods[name]["label"]} | {c["weight_key"]} '
                f'{c["weight"]:g} | {c["ratio"]:.4f} | {c["cosine"]:+.3f} | '
                f'{c.get("scaled_weight", c["weight"]):.4g} |')
    pairs = sorted({k for m in methods.values() for k in m['values']},
                   key=_pair_order)
    lines += ['', f'Per {unit[:-1]} (bbox mAP):', '',
              '| method | ' + ' | '.join(pairs) + ' |',
              '| --- |' + ' --- |' * len(pairs)]
    for m in methods.values():
        lines.append(f'| {m["label"]} | ' + ' | '.join(
            f'{m["values"][k]:.4f}' if k in m['values'] else ''
            for k in pairs) + ' |')
    return '\n'.join(lines) + '\n'


def _method_table(methods: dict, weights: dict, calib: dict) -> List[str]:
    lines = [
        '| method | weight | bbox mAP | mAP50 | mAP minus alone | ahead | '
        'p | mAP50 minus alone | s / step | peak RSS (MB) |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for name, m in methods.items():
        weight = ', '.join(f'{k} {v:.3g}' for k, v in
                           weights.get(name, {}).items()) or ''
        if name in calib:
            weight += f' (config {calib[name]["weight"]:g})'
        diff = m.get('minus_alone')
        lines.append(
            f'| {m["label"]} | {weight} | '
            f'{format_mean_se(m["bbox_mAP"])} | '
            f'{format_mean_se(m["bbox_mAP_50"])} | '
            + (f'{format_mean_se(diff["bbox_mAP"], sign=True)} | '
               f'{_ahead(diff["bbox_mAP"])} | {_p(diff["bbox_mAP"])} | '
               f'{format_mean_se(diff["bbox_mAP_50"], sign=True)} | '
               if diff else ' | | | | ')
            + f'{m["step_s"]:.2f} | {m["peak_rss_mb"]:.0f} |')
    return lines


def plot_comparison(report: dict, out: str) -> None:
    """Bars of mAP per method and of the paired difference to the student
    alone, each with its standard error."""
    from ..demo.report import pyplot
    plt = pyplot()
    methods = report['methods']
    names = list(methods)
    labels = [methods[n]['label'] for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(names))

    def err(stat):
        return 0.0 if not np.isfinite(stat['se']) else stat['se']

    ax1.bar(x, [methods[n]['bbox_mAP']['mean'] for n in names],
            yerr=[err(methods[n]['bbox_mAP']) for n in names], capsize=4)
    ax1.set_xticks(x, labels, rotation=30, ha='right', fontsize=8)
    ax1.set_ylabel('val bbox mAP (mean +- s.e.)')
    if report.get('teacher'):
        ax1.axhline(report['teacher']['bbox_mAP'], ls='--', c='gray',
                    label='teacher')
        ax1.legend(fontsize=8)
    diffs = [n for n in names if 'minus_alone' in methods[n]]
    if 'folds' in report:
        _plot_pairs(ax2, report, diffs)
    else:
        x2 = np.arange(len(diffs))
        ax2.bar(x2, [methods[n]['minus_alone']['bbox_mAP']['mean']
                     for n in diffs],
                yerr=[err(methods[n]['minus_alone']['bbox_mAP'])
                      for n in diffs], capsize=4, color='tab:orange')
        ax2.set_xticks(x2, [methods[n]['label'] for n in diffs],
                       rotation=30, ha='right', fontsize=8)
        ax2.set_ylabel('minus the student alone, paired (mean +- s.e.)')
    ax2.axhline(0, c='k', lw=0.8)
    fig.suptitle(f'Seeds {report.get("seeds")}' + (
        f', folds {list(report["folds"])}' if 'folds' in report else ''))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _plot_pairs(ax, report: dict, names: List[str]) -> None:
    """Every (fold, seed) pair's difference to the student alone, grouped
    by fold, one colour per method, with each fold's mean."""
    folds = list(report['folds'])
    width = 0.8 / max(1, len(names))
    for j, name in enumerate(names):
        for i, fold in enumerate(folds):
            table = report['folds'][fold]
            if name not in table or ALONE not in table:
                continue
            alone = table[ALONE]['values']
            ys = [v - alone[k] for k, v in table[name]['values'].items()
                  if k in alone]
            x = i - 0.4 + width * (j + 0.5)
            ax.scatter([x] * len(ys), ys, s=14, color=f'C{j}',
                       label=report['methods'][name]['label'] if i == 0
                       else None)
            if ys:
                ax.hlines(np.mean(ys), x - width / 2, x + width / 2,
                          color=f'C{j}')
    ax.set_xticks(np.arange(len(folds)), [f'fold {f}' for f in folds],
                  fontsize=8)
    ax.set_ylabel('minus the student alone, per pair (bbox mAP)')
    ax.legend(fontsize=7)
