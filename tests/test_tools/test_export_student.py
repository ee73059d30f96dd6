"""tools/export_student.py: exported weights equal the student's and load
with the student's plain config."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmrazor.registry import MODELS

from fgd_mmrazor.utils import safe_load
from ..conftest import CONFIGS, REPO


def test_export_student_roundtrip(tmp_path):
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py'))
    cfg.model.teacher_ckpt_required = False
    init_default_scope('mmyolo')
    algo = MODELS.build(cfg.model)
    with torch.no_grad():  # make the student differ from a fresh init
        for p in algo.student.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    src = str(tmp_path / 'algo.pth')
    torch.save({'state_dict': algo.state_dict(), 'meta': {'epoch': 3},
                'optimizer': {'x': 1}}, src)
    dst = str(tmp_path / 'student.pth')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'export_student.py'), src, dst
    ], check=True, cwd=REPO)

    exported = safe_load(dst)
    assert set(exported) == {'state_dict', 'meta'}
    assert exported['meta']['epoch'] == 3
    student_sd = algo.student.state_dict()
    assert set(exported['state_dict']) == set(student_sd)
    for k, v in student_sd.items():
        assert torch.equal(exported['state_dict'][k], v), k
    assert not any(k.startswith(('teacher.', 'distiller.'))
                   for k in exported['state_dict'])

    plain = Config.fromfile(osp.join(CONFIGS, 'demo', 'yolov5_n_trees.py'))
    from mmyolo.registry import MODELS as YOLO
    model = YOLO.build(plain.model)
    load_checkpoint(model, dst, strict=True)
    for k, v in student_sd.items():
        assert torch.equal(model.state_dict()[k], v), k
