"""Helpers to shrink a config to a few CPU iterations on tiny data."""
import os.path as osp
import uuid

from mmengine.config import Config

from fgd_mmrazor.engine.cli_config import prepare_cfg

TINY_TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='mmdet.Resize', scale=(96, 64), keep_ratio=False),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction'))
]


def tiny_cfg(config, data_root, work_dir, epochs=1, batch_size=2,
             val=False, options=None, classes=('Tree', )):
    """Load ``config`` and point it at a tiny COCO set for a CPU smoke run.

    The training pipeline is a plain resize to 96x64 (a rectangular input,
    no mosaic) so that a YOLOv5-l teacher runs in seconds.
    """
    cfg = Config.fromfile(config)
    ann = osp.join(data_root, 'annotations.json')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        ds.data_root = data_root
        ds.ann_file = ann
        ds.data_prefix = dict(img='images/')
        if classes is not None:  # None: keep the config's (COCO) classes
            ds.metainfo = dict(classes=classes)
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        cfg[loader].batch_size = batch_size if loader == 'train_dataloader' \
            else 1
    cfg.train_dataloader.dataset.pipeline = TINY_TRAIN_PIPELINE
    cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=False)
    cfg.val_dataloader.dataset.pop('batch_shapes_cfg', None)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = ann
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs if val else epochs + 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.save_best = None
    if 'param_scheduler' in cfg.default_hooks and \
            'warmup_mim_iter' in cfg.default_hooks.param_scheduler or \
            cfg.default_hooks.param_scheduler.get('type') == \
            'YOLOv5ParamSchedulerHook':
        cfg.default_hooks.param_scheduler.max_epochs = epochs
        cfg.default_hooks.param_scheduler.warmup_mim_iter = 2
    cfg.default_hooks.pop('visualization', None)
    cfg.work_dir = work_dir
    # mmyolo names its visualizer 'visualizer': a second Runner in the same
    # process would reuse the first one's (and its log dir).
    cfg.visualizer.name = f'visualizer_{uuid.uuid4().hex}'
    cfg.launcher = 'none'
    if options:
        cfg.merge_from_dict(options)
    return prepare_cfg(cfg)


def probe_cfg(config, data_root, work_dir, path, kill_at_iter=0,
              probe_options=None, **kwargs):
    """:func:`tiny_cfg` with a deterministic pipeline (no flip), a fixed
    seed and the test probe hook (``tests/probe_hook.py``), dumped to
    ``path`` for a ``tools/train.py`` / ``tools/dist_train.sh`` subprocess.
    """
    cfg = tiny_cfg(config, data_root, work_dir, **kwargs)
    cfg.train_dataloader.dataset.pipeline = [
        t for t in TINY_TRAIN_PIPELINE if t['type'] != 'mmdet.RandomFlip'
    ]
    cfg.randomness = dict(seed=0)
    cfg.launcher = 'none'  # set by the launching tool
    imports = list(cfg.get('custom_imports', {}).get('imports', []))
    cfg.custom_imports = dict(
        imports=imports + ['tests.probe_hook'], allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='FGDTestProbeHook', kill_at_iter=kill_at_iter,
             **(probe_options or {}))
    ]
    cfg.dump(path)
    return path


def read_probe(work_dir, rank=0):
    """Rows written by the probe hook of ``rank``, in order."""
    import json
    with open(osp.join(work_dir, 'probe', f'rank{rank}.jsonl')) as f:
        return [json.loads(line) for line in f]


def save_demo_teacher(path):
    """Save a freshly initialised demo teacher (YOLOv5-s for the trees
    configs) as a checkpoint at ``path``; return the path."""
    import torch
    from mmengine.registry import init_default_scope
    from mmyolo.registry import MODELS

    from .conftest import CONFIGS
    init_default_scope('mmyolo')
    teacher = MODELS.build(
        Config.fromfile(osp.join(CONFIGS, 'demo', 'yolov5_s_trees.py')).model)
    torch.save({'state_dict': teacher.state_dict()}, str(path))
    return str(path)
