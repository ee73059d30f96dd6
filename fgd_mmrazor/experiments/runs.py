"""Training runs as subprocesses of ``tools/train.py``, reused when done,
and the COCO evaluation of their plain checkpoints.

A run's work dir gets ``done.json``: the settings it was trained with (the
config, its resolved text's SHA-1 and the ``--cfg-options``), the wall
time, the final checkpoint and the peak resident memory of the training
process. :func:`train_run` trains again only when the settings differ (an
edited config or base is retrained) or ``force`` is set.
"""
import hashlib
import json
import os
import os.path as osp
import queue
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

__all__ = ['REPO', 'train_run', 'run_settings', 'evaluate_checkpoint',
           'epoch_options', 'visible_gpus', 'gpu_slots']

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')


def epoch_options(epochs: int) -> dict:
    """Config overrides that set the schedule of the demo configs to
    ``epochs`` (their schedulers follow ``train_cfg.max_epochs``) with one
    validation and one checkpoint, at the end; ``[f'{k}={v}' ...]`` of it
    are ``--cfg-options``."""
    return {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'default_hooks.checkpoint.interval': epochs,
    }


def visible_gpus() -> List[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries
    (that variable's list where it is set, else ``0`` .. ``n - 1``); empty
    without a GPU."""
    import torch
    if not torch.cuda.is_available():
        return []
    given = os.environ.get('CUDA_VISIBLE_DEVICES')
    if given is not None:
        return [g.strip() for g in given.split(',') if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_slots(jobs: int, gpus: Sequence[str]) -> Optional[queue.Queue]:
    """A queue of ``jobs`` GPU ids, the GPUs in turn (``jobs`` runs at once
    on two GPUs: 0, 1, 0, 1, ...): each run takes one and gives it back
    when it ends, so the runs spread over the GPUs. None without GPUs."""
    if not gpus:
        return None
    slots = queue.Queue()
    for i in range(max(1, jobs)):
        slots.put(gpus[i % len(gpus)])
    return slots


def run_settings(config: str, options: Sequence[str]) -> dict:
    """What identifies a run: the config, its resolved text and options."""
    from mmengine.config import Config
    text = Config.fromfile(config).pretty_text
    return dict(config=osp.abspath(config), options=list(options),
                config_sha1=hashlib.sha1(text.encode()).hexdigest())


def _done(work_dir: str, settings: dict) -> Optional[dict]:
    done_file = osp.join(work_dir, 'done.json')
    if not osp.isfile(done_file):
        return None
    with open(done_file) as f:
        done = json.load(f)
    if done.get('settings') != settings or not osp.isfile(
            done.get('checkpoint', '')):
        return None
    return done


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident memory (KiB) of a running process so far (Linux's
    ``/proc/PID/status`` ``VmHWM``; 0 where it cannot be read)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def train_run(config: str,
              work_dir: str,
              options: Sequence[str] = (),
              force: bool = False,
              env: Optional[Dict[str, str]] = None,
              log_file: Optional[str] = None,
              gpu: Optional[str] = None) -> dict:
    """Train ``config`` into ``work_dir`` unless an identical run is done.

    Args:
        config (str): A train config (detector or distillation).
        work_dir (str): The run's work dir (emptied before training).
        options (Sequence[str]): ``--cfg-options`` of ``tools/train.py``.
        force (bool): Train even if an identical run is done.
        env (dict, optional): Extra environment variables of the process
            (e.g. ``OMP_NUM_THREADS``).
        log_file (str, optional): Write the process's output there instead
            of the console.
        gpu (str, optional): Train on this GPU (``CUDA_VISIBLE_DEVICES``);
            not part of the run's settings (a run done on another GPU is
            the same run).

    Returns:
        dict: ``checkpoint``, ``wall_s``, ``peak_rss_mb`` (the training
        process's peak resident memory, read every second; 0 where
        ``/proc`` is missing), ``settings`` and ``reused``.
    """
    settings = dict(run_settings(config, options), env=dict(env or {}))
    done = None if force else _done(work_dir, settings)
    if done is not None:
        return dict(done, reused=True)
    if osp.isdir(work_dir):
        shutil.rmtree(work_dir)
    os.makedirs(work_dir)
    cmd = [sys.executable, TRAIN, config, '--work-dir', work_dir]
    if options:
        cmd += ['--cfg-options', *options]
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = REPO + os.pathsep + full_env.get(
        'PYTHONPATH', '')
    full_env.update(env or {})
    if gpu is not None:
        full_env['CUDA_VISIBLE_DEVICES'] = str(gpu)
    start = time.time()
    out = open(log_file, 'w') if log_file else None
    try:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out,
                                stderr=subprocess.STDOUT if out else None)
        peak_kib = 0
        while proc.poll() is None:
            # VmHWM: the process's own high-water resident memory (reset
            # at exec; getrusage's ru_maxrss of a child would start from
            # this parent's size at fork).
            peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
            time.sleep(1.0)
    finally:
        if out:
            out.close()
    if proc.returncode != 0:
        where = f' (see {log_file})' if log_file else ''
        raise RuntimeError(f'training failed with exit code '
                           f'{proc.returncode}: {" ".join(cmd)}{where}')
    done = dict(settings=settings, wall_s=time.time() - start,
                checkpoint=_last_checkpoint(work_dir),
                peak_rss_mb=peak_kib / 1024, command=cmd)
    with open(osp.join(work_dir, 'done.json'), 'w') as f:
        json.dump(done, f, indent=2)
    return dict(done, reused=False)


def evaluate_checkpoint(config: str, checkpoint: str, work_dir: str,
                        cfg_options: Optional[dict] = None) -> dict:
    """COCO bbox mAP and mAP50 of a plain checkpoint on the config's test
    set (mmengine's ``Runner.test``)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from ..engine.cli_config import prepare_cfg
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    prepare_cfg(cfg, for_test=True)
    metrics = Runner.from_cfg(cfg).test()
    return {
        'bbox_mAP': float(metrics['coco/bbox_mAP']),
        'bbox_mAP_50': float(metrics['coco/bbox_mAP_50']),
    }
