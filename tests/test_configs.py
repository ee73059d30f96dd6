"""Every config in configs/ loads and its model builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from fgd_mmrazor.engine.cli_config import is_distill_cfg, prepare_cfg
from mmrazor.registry import MODELS

from .conftest import CONFIGS

ALL = sorted(glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True))
ALL = [c for c in ALL if '_base_' not in c]


def test_configs_found():
    assert osp.join(CONFIGS, 'fgd_yolov5s_from_l.py') in ALL


@pytest.mark.parametrize('path', ALL, ids=lambda p: osp.relpath(p, CONFIGS))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    prepare_cfg(cfg)
    # No working-directory-relative data paths.
    root = cfg.train_dataloader.dataset.get('data_root', '')
    assert not root.startswith('./') and '{{' not in root
    init_default_scope(cfg.get('default_scope', 'mmyolo'))
    if is_distill_cfg(cfg):
        cfg.model.teacher_ckpt = None
        cfg.model.teacher_ckpt_required = False
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        from mmyolo.registry import MODELS as YOLO_MODELS
        registry = MODELS if is_distill_cfg(cfg) else YOLO_MODELS
        model = registry.build(cfg.model)
    if is_distill_cfg(cfg):
        assert not model.teacher.training
        assert len(model.distiller.connectors) >= 1


def test_authors_recipe_initialises_adapters_near_zero():
    """configs/demo/recipe/*_authors.py: N(0, 1e-4) adapters after the
    runner's init_weights, and a delay instead of the adapter warm-up."""
    import torch
    path = osp.join(CONFIGS, 'demo', 'recipe',
                    'fgd_yolov5n_from_mnv2_trees_authors.py')
    cfg = Config.fromfile(path)
    cfg.model.teacher_ckpt = None
    cfg.model.teacher_ckpt_required = False
    # the teacher's pretrained backbone file is not needed here
    cfg.model.teacher.cfg_path = osp.join(CONFIGS, 'demo',
                                          'yolov5_s_trees.py')
    init_default_scope('mmyolo')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for name, conn in model.distiller.connectors.items():
        weight = conn.conv_module.conv.weight
        assert 0.5e-4 < float(weight.std()) < 2e-4, name
        assert float(conn.conv_module.conv.bias.abs().max()) == 0.0
    hooks = [h for h in cfg.custom_hooks if h.type == 'AdapterWarmupHook']
    assert hooks == [dict(type='AdapterWarmupHook', delay_iters=70)]
