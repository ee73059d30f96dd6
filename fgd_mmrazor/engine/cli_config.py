"""Loading and patching configs for the command-line tools (`tools/train.py`,
`tools/test.py`): `--cfg-options`, the work dir, `--amp`, DDP on CPU and the
guard hook of distillation configs; the arguments they share."""
import argparse
import os
import os.path as osp
import shutil
import warnings

import torch
from mmengine.config import Config, DictAction

__all__ = [
    'prepare_cfg', 'is_distill_cfg', 'init_cpu_dist', 'load_cli_cfg',
    'add_guard_hook', 'add_cfg_options', 'parse_launcher_args',
    'warn_if_gpu_unused', 'check_mmcv_cuda_ops'
]

DISTILL_TYPES = ('FGDDistill', 'mmrazor.FGDDistill')


def is_distill_cfg(cfg: Config) -> bool:
    """Whether the config's model is an ``FGDDistill`` algorithm."""
    return cfg.model.get('type') in DISTILL_TYPES


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options key=value ...``, as OpenMMLab's tools take it."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value (xxx=yyy format)')


def parse_launcher_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add ``--launcher`` and ``--local-rank``, parse, and export
    ``LOCAL_RANK`` for launchers that pass the rank as an argument."""
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_cli_cfg(config: str, cfg_options=None, launcher: str = 'none',
                 work_dir=None) -> Config:
    """Load a config the way OpenMMLab's tools do.

    ``--cfg-options`` are merged, and ``work_dir`` is, in order: the CLI
    value, the config's, or ``./work_dirs/<config name>``.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def _fix_collate_scope(cfg: Config) -> None:
    """Drop ``_scope_`` from ``collate_fn`` configs.

    A config inherited through ``pkg::`` gets ``_scope_`` on every dict with
    a ``type``; mmengine's ``Runner.build_dataloader`` passes it on to the
    collate function as a keyword, which fails. The function is looked up
    in the config's ``default_scope`` (the package the config came from).
    """
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        collate = (cfg.get(key) or {}).get('collate_fn')
        if isinstance(collate, dict) and '_scope_' in collate:
            collate.pop('_scope_')


def prepare_cfg(cfg: Config, amp: bool = False,
                for_test: bool = False) -> Config:
    """Apply the CLI switches that need more than one key.

    Args:
        cfg (Config): The loaded config, modified in place.
        amp (bool): Mixed precision: mmengine's ``AmpOptimWrapper`` with a
            dynamic loss scale (as mmdet's ``--amp``).
        for_test (bool): Evaluation only. For a distillation config the
            teacher weights come from the evaluated checkpoint, so no
            ``teacher_ckpt`` is loaded.

    Returns:
        Config: ``cfg``.
    """
    warn_if_gpu_unused()
    check_mmcv_cuda_ops()
    if amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            pass
        elif wrapper == 'OptimWrapper':
            if torch.cuda.is_available():
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
            else:
                # mmengine's AmpOptimWrapper needs a GPU; on CPU autocast
                # runs in bfloat16, which needs no loss scale.
                cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
                cfg.optim_wrapper.dtype = 'bfloat16'
        else:
            raise ValueError(f'--amp: unsupported optim_wrapper {wrapper}')
    if cfg.get('launcher', 'none') != 'none' and \
            not torch.cuda.is_available():
        # DDP on CPU: gloo (nccl needs GPUs), and no device_ids (mmengine
        # passes [LOCAL_RANK], which DDP refuses for a CPU module).
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg.backend = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel')
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
        # SyncBN needs GPUs: mmyolo detectors keep plain BN on CPU (the
        # distillation algorithm reverts its models itself).
        if str(cfg.model.get('type', '')).endswith('YOLODetector'):
            cfg.model.use_syncbn = False
    _fix_collate_scope(cfg)
    if is_distill_cfg(cfg) and not for_test:
        add_guard_hook(cfg)
    if for_test and is_distill_cfg(cfg):
        cfg.model.teacher_ckpt = None
        cfg.model.teacher_ckpt_required = False
    return cfg


def _machine_has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (a device node or nvidia-smi)."""
    return osp.exists('/dev/nvidia0') or shutil.which('nvidia-smi') is not None


def warn_if_gpu_unused() -> bool:
    """Warn when the machine has an NVIDIA GPU but torch cannot use it (a
    CPU build of torch, or a CUDA build that does not fit the driver):
    training would run on the CPU, many times slower, without a word.

    Returns:
        bool: whether it warned.
    """
    if torch.cuda.is_available() or not _machine_has_nvidia_gpu():
        return False
    build = (f'a CUDA {torch.version.cuda} build that does not see it '
             '(driver too old for it? CUDA_VISIBLE_DEVICES empty?)'
             if torch.version.cuda else 'a CPU-only build')
    warnings.warn(
        f'This machine has an NVIDIA GPU but torch {torch.__version__} is '
        f'{build}: training runs on the CPU. For the GPU, install a CUDA '
        'build of torch (docs/install.md, "GPUs": FGD_TORCH=cu126 bash '
        'tools/setup_env.sh).', RuntimeWarning, stacklevel=2)
    return True


def check_mmcv_cuda_ops() -> None:
    """Stop before the run when torch computes on a GPU but mmcv's ops
    were built without CUDA: the first validation would die in NMS
    ("nms_impl: implementation for device cuda:0 not found").

    Raises:
        RuntimeError: with the fix (rebuild mmcv with CUDA ops).
    """
    if not torch.cuda.is_available():
        return
    from mmcv import ops
    if ops.get_compiling_cuda_version() in (None, 'not available'):
        raise RuntimeError(
            'torch sees a GPU but mmcv was built without CUDA ops: NMS and '
            'the other mmcv ops would fail on the GPU. Rebuild the '
            'environment on a machine with the GPU visible, or with '
            'TORCH_CUDA_ARCH_LIST set (docs/install.md, "GPUs"); '
            '`python tools/mmcv_wheel.py check` shows what mmcv has.')


def add_guard_hook(cfg: Config) -> Config:
    """Add ``DistillGuardHook`` to ``custom_hooks`` unless it is there: the
    optimizer and frozen-teacher checks then run under every launcher."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(
            str(h.get('type', '')).split('.')[-1] == 'DistillGuardHook'
            for h in hooks):
        hooks.append(dict(type='DistillGuardHook'))
    cfg.custom_hooks = hooks
    return cfg


def init_cpu_dist(cfg: Config) -> None:
    """Start the gloo process group for a CPU-only ``--launcher pytorch``.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which a CPU
    build of torch does not have; the Runner skips ``init_dist`` when the
    group already exists.
    """
    import torch.distributed as dist
    if cfg.get('launcher', 'none') == 'pytorch' and \
            not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group(backend='gloo')
