"""Every config in configs/ loads and its model builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from fgd_mmrazor.apis import is_distill_cfg, prepare_cfg
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
