"""The pre-flight teacher check on tiny data: a teacher identical to the
student has nothing to transfer, a different one has; the gradient ratio
is linear in loss_weight; the suggestion and the verdict follow."""
import math
import os.path as osp

import pytest
import torch

from ..conftest import CONFIGS, make_tiny_coco
from ..utils import save_demo_teacher, tiny_cfg

DISTILL = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')
STUDENT = osp.join(CONFIGS, 'demo', 'yolov5_n_trees.py')


@pytest.fixture(scope='module')
def tiny8(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny8'))
    make_tiny_coco(root, num_images=8, seed=3)
    return root


def _config(data_root, tmp_path, name, self_teacher=False, loss_weight=None):
    cfg = tiny_cfg(DISTILL, data_root, str(tmp_path / 'work'))
    cfg.train_dataloader.dataset.pipeline = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] != 'mmdet.RandomFlip'
    ]
    if self_teacher:
        cfg.model.teacher.cfg_path = STUDENT
        cfg.model.distiller.teacher_channels = [64, 128, 256]
    if loss_weight is not None:
        cfg.model.distiller.loss.loss_weight = loss_weight
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


def _save_student(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmyolo.registry import MODELS
    init_default_scope('mmyolo')
    torch.manual_seed(1)
    student = MODELS.build(Config.fromfile(STUDENT).model)
    torch.save({'state_dict': student.state_dict()}, str(path))
    return str(path)


def _check(config, teacher, student, **kwargs):
    from fgd_mmrazor.analysis import check_teacher
    kwargs.setdefault('fit_steps', 3)
    return check_teacher(config, teacher, student, num_batches=4,
                         grad_batches=1, **kwargs)


def test_a_copy_of_the_student_has_nothing_to_transfer(tiny8, tmp_path):
    student = _save_student(tmp_path / 'student.pth')
    result = _check(_config(tiny8, tmp_path, 'self', self_teacher=True),
                    student, student)
    for name, level in result['levels'].items():
        if level['cells'][1] >= 2:  # held-out cells to score on
            assert level['probe'] > 0.99, (name, level)
    assert result['verdict'].startswith('LITTLE TO TRANSFER')
    assert result['student'] == 'student'


def test_another_teacher_and_the_gradient_ratio(tiny8, tmp_path):
    from fgd_mmrazor.analysis import format_report
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    student = _save_student(tmp_path / 'student.pth')
    results = [
        _check(_config(tiny8, tmp_path, f'lw{w}', loss_weight=w), teacher,
               student) for w in (0.01, 0.02)
    ]
    levels = results[0]['levels']
    assert min(lv['probe'] for lv in levels.values()
               if lv['cells'][1] >= 2) < 0.9
    # small boxes: imitated at P3/P4 (their best anchors), not P5
    assert levels['p3']['share'] > 0 and levels['p3']['cells_per_box'] > 0
    for lv in levels.values():
        assert 0 <= lv['share'] < 1
    # the imitation gradient is linear in the loss weight, the detection
    # gradient does not depend on it
    r1, r2 = (r['gradients']['ratio'] for r in results)
    assert r1 > 0 and r2 == pytest.approx(2 * r1, rel=1e-4)
    assert results[0]['gradients']['cosine'] == pytest.approx(
        results[1]['gradients']['cosine'], abs=1e-4)
    # both suggest the same weight: the one with the target ratio
    s1, s2 = (r['suggested_loss_weight'] for r in results)
    assert s1 == pytest.approx(s2, rel=1e-4)
    assert s1 == pytest.approx(0.01 * results[0]['target_ratio'] / r1)
    fit = results[0]['adapter_fit']
    assert fit['steps'] == 3 and 0 < fit['first'] < math.inf
    assert 0 < fit['last'] < math.inf
    text = format_report(results[0])
    assert 'verdict: ' in text and '| p3 |' in text


def test_without_a_student_the_verdict_is_unknown(tiny8, tmp_path):
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    result = _check(_config(tiny8, tmp_path, 'fresh'), teacher, None,
                    fit_steps=0)
    assert result['student'] == 'freshly initialised'
    assert result['verdict'].startswith('UNKNOWN')
    assert result['adapter_fit']['steps'] == 0


def test_cfg_options_reach_the_checked_config(tiny8, tmp_path):
    """``--cfg-options`` of tools/check_teacher.py: the check runs the
    overridden loss weight and adapter."""
    from fgd_mmrazor.analysis.models import build_distill_runner_parts
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    config = _config(tiny8, tmp_path, 'options')
    options = {'model.distiller.loss.loss_weight': 0.05,
               'model.distiller.connector.kernel_size': 3}
    _, model, _, _ = build_distill_runner_parts(
        config, teacher, cfg_options=options,
        work_dir=str(tmp_path / 'work'))
    conv = model.distiller.adapter('p3').conv_module.conv
    assert conv.kernel_size == (3, 3) and conv.padding == (1, 1)
    result = _check(config, teacher, None, fit_steps=0, cfg_options=options)
    assert result['loss_weight'] == pytest.approx(0.05)


def test_suggestion_and_verdict_rules():
    from fgd_mmrazor.analysis.teacher_check import (suggest_loss_weight,
                                                    verdict)
    assert suggest_loss_weight(0.01, 0.25, 0.5) == pytest.approx(0.02)
    assert math.isnan(suggest_loss_weight(0.01, 0.0))
    probes = dict(p3=dict(probe=0.3), p4=dict(probe=0.8))
    grads = dict(ratio=0.05)
    line = verdict(probes, grads, 0.001, 0.01, True)
    assert line.startswith('GO') and 'p3' in line and 'p4' not in line
    assert 'try 0.01' in line
    line = verdict(dict(p3=dict(probe=0.7)), grads, 0.001, 0.0015, True)
    assert line.startswith('LITTLE') and 'about right' in line


def test_fitting_the_adapters_lowers_their_loss(tiny8, tmp_path):
    from fgd_mmrazor.analysis.models import build_distill_runner_parts
    from fgd_mmrazor.analysis.teacher_check import fit_adapters
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    _, model, loader, _ = build_distill_runner_parts(
        _config(tiny8, tmp_path, 'fit'), teacher, None,
        work_dir=str(tmp_path / 'w'))
    model.train()
    student = [p.detach().clone() for p in model.architecture.parameters()]
    batch = next(iter(loader))
    history = fit_adapters(model, [batch], steps=6, lr=1e-2)
    assert len(history) == 6 and history[-1] < history[0]
    # the student is not touched
    for before, p in zip(student, model.architecture.parameters()):
        assert torch.equal(before, p)
    assert model.distiller.student_grad_scale == 1.0
