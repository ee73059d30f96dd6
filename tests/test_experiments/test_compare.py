"""The method comparison: the demo method configs train, the statistics
match a hand computation, and tools/compare_methods.py runs end to end on
tiny data (1 seed, 2 methods), applies the weight rule and resumes."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..conftest import CONFIGS, REPO
from ..utils import tiny_cfg

DEMO = osp.join(CONFIGS, 'demo')
TEACHER = osp.join(DEMO, 'yolov5_mnv2_trees.py')
STUDENT = osp.join(DEMO, 'yolov5_n_trees.py')
METHODS = {
    'fgfi_whole_map': ('methods/fgfi_whole_map_yolov5n_from_mnv2_trees.py',
                       'loss_imitation'),
    'cwd': ('methods/cwd_yolov5n_from_mnv2_trees.py', 'loss_cwd'),
    'pkd': ('methods/pkd_yolov5n_from_mnv2_trees.py', 'loss_pkd'),
    'mgd': ('methods/mgd_yolov5n_from_mnv2_trees.py', 'loss_mgd'),
}


def _read_scalars(work_dir):
    from fgd_mmrazor.demo.report import read_scalars
    return read_scalars(work_dir)


@pytest.fixture(scope='module')
def mnv2_teacher(tmp_path_factory):
    """A freshly initialised demo teacher (no pretrained download)."""
    from mmengine.registry import init_default_scope
    from mmyolo.registry import MODELS
    init_default_scope('mmyolo')
    cfg = Config.fromfile(TEACHER)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    teacher = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)
    return path


def test_summarize_matches_a_hand_computation():
    from fgd_mmrazor.experiments.compare import summarize
    rows = []
    for seed, (alone, method) in enumerate([(0.10, 0.11), (0.20, 0.23),
                                            (0.30, 0.29)]):
        for name, value in (('alone', alone), ('m', method)):
            rows.append(dict(name=name, seed=seed, bbox_mAP=value,
                             bbox_mAP_50=2 * value, step_s=1.0 + seed,
                             peak_rss_mb=100.0 * (seed + 1)))
    out = summarize(rows, ['alone', 'm'])['methods']
    m = out['m']
    # values 0.11, 0.23, 0.29: mean 0.21, stdev sqrt(0.0084), s.e. /sqrt(3)
    assert m['bbox_mAP']['mean'] == pytest.approx(0.21)
    assert m['bbox_mAP']['se'] == pytest.approx(math.sqrt(0.0084 / 3))
    # differences 0.01, 0.03, -0.01: mean 0.01, stdev 0.02, s.e. 0.02/sqrt3
    diff = m['minus_alone']['bbox_mAP']
    assert diff['mean'] == pytest.approx(0.01)
    assert diff['se'] == pytest.approx(0.02 / math.sqrt(3))
    assert diff['pairs'] == ['0', '1', '2'] and diff['ahead'] == 2
    # sign flips of (0.01, 0.03, -0.01): |sum| >= 0.03 in 6 of 8
    assert diff['p'] == pytest.approx(0.75)
    assert m['minus_alone']['bbox_mAP_50']['mean'] == pytest.approx(0.02)
    assert m['step_s'] == pytest.approx(2.0)
    assert m['peak_rss_mb'] == 300.0
    assert 'minus_alone' not in out['alone']
    # one seed: no standard error
    one = summarize(rows[:2], ['alone', 'm'])['methods']['m']
    assert one['bbox_mAP']['n'] == 1 and math.isnan(one['bbox_mAP']['se'])


@pytest.mark.parametrize('method', list(METHODS))
def test_demo_method_trains_with_finite_losses(method, tiny_coco,
                                               mnv2_teacher, tmp_path):
    config, prefix = METHODS[method]
    work_dir = str(tmp_path / 'work')
    cfg = tiny_cfg(osp.join(DEMO, config), tiny_coco, work_dir,
                   options={'model.teacher_ckpt': mnv2_teacher})
    runner = Runner.from_cfg(cfg)
    model = runner.model
    params = {k: v.detach().clone()
              for k, v in model.distiller.connectors.named_parameters()}
    assert params, 'no connector parameters'
    runner.train()
    rows = [r for r in _read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 2  # 4 images, batch 2
    for level in ('p3', 'p4', 'p5'):
        values = [r[f'distill.{prefix}_{level}'] for r in rows]
        assert all(math.isfinite(v) and v >= 0 for v in values), values
        assert any(v > 0 for v in values), (level, values)
    changed = [k for k, v in model.distiller.connectors.named_parameters()
               if not torch.equal(v.detach(), params[k])]
    assert changed, 'no connector was trained'


def _tiny_config(src, data_root, path):
    cfg = tiny_cfg(src, data_root, osp.join(osp.dirname(path), 'unused'))
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'AdapterWarmupHook':
            hook.update(adapter_only_iters=1, ramp_iters=1)
    cfg.dump(path)
    return path


def test_compare_methods_end_to_end(tiny_coco, mnv2_teacher, tmp_path):
    configs = tmp_path / 'configs'
    configs.mkdir()
    student = _tiny_config(STUDENT, tiny_coco, str(configs / 'student.py'))
    fgfi = _tiny_config(osp.join(DEMO, 'fgd_yolov5n_from_mnv2_trees.py'),
                        tiny_coco, str(configs / 'fgfi.py'))
    cwd = _tiny_config(osp.join(DEMO, METHODS['cwd'][0]), tiny_coco,
                       str(configs / 'cwd.py'))
    work_dir = str(tmp_path / 'compare')
    cmd = [
        sys.executable, osp.join(REPO, 'tools', 'compare_methods.py'),
        '--student-config', student, '--methods', f'fgfi={fgfi}',
        f'cwd={cwd}', '--seeds', '0', '--teacher-ckpt', mnv2_teacher,
        '--work-dir', work_dir, '--threads', '1'
    ]
    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    with open(osp.join(work_dir, 'compare.json')) as f:
        report = json.load(f)
    assert list(report['methods']) == ['alone', 'fgfi', 'cwd']
    # the weight rule: the reference keeps its weight, cwd's is scaled so
    # that its gradient ratio is the reference's
    calib = report['calibration']
    assert calib['fgfi']['scaled_weight'] == pytest.approx(
        calib['fgfi']['weight'])
    assert calib['fgfi']['weight'] == pytest.approx(0.001)
    assert calib['cwd']['weight'] == pytest.approx(10)
    assert calib['cwd']['ratio'] > 0
    assert calib['cwd']['scaled_weight'] == pytest.approx(
        10 * calib['fgfi']['ratio'] / calib['cwd']['ratio'])
    assert report['weights']['cwd'] == {
        'loss_weight': pytest.approx(calib['cwd']['scaled_weight'])
    }
    run_cfg = Config.fromfile(osp.join(work_dir, 'configs', 'cwd_seed0.py'))
    assert run_cfg.model.distiller.loss.loss_weight == pytest.approx(
        calib['cwd']['scaled_weight'])
    assert run_cfg.randomness.seed == 0
    # statistics from the runs' own results
    results = {}
    for name in ('alone', 'fgfi', 'cwd'):
        with open(osp.join(work_dir, 'runs', f'{name}_seed0',
                           'result.json')) as f:
            results[name] = json.load(f)
        assert 0 <= results[name]['bbox_mAP'] <= 1
        assert results[name]['peak_rss_mb'] > 100
        assert results[name]['step_s'] > 0
    for name in ('fgfi', 'cwd'):
        m = report['methods'][name]
        assert m['bbox_mAP']['mean'] == pytest.approx(
            results[name]['bbox_mAP'])
        assert m['minus_alone']['bbox_mAP']['mean'] == pytest.approx(
            results[name]['bbox_mAP'] - results['alone']['bbox_mAP'])
        assert m['minus_alone']['bbox_mAP']['n'] == 1
    with open(osp.join(work_dir, 'compare.md')) as f:
        text = f.read()
    assert '| student alone |' in text and 'minus alone' in text
    assert osp.getsize(osp.join(work_dir, 'compare.png')) > 0
    # a second call trains nothing and gives the same table
    ckpt = osp.join(work_dir, 'runs', 'cwd_seed0', 'student.pth')
    mtime = os.path.getmtime(ckpt)
    out = subprocess.run(cmd, check=True, env=env, capture_output=True,
                         text=True)
    assert '3 runs (3 per seed x 1 seeds): 3 done, 0 to train' in \
        out.stdout + out.stderr
    assert os.path.getmtime(ckpt) == mtime
    with open(osp.join(work_dir, 'compare.json')) as f:
        again = json.load(f)
    assert again['methods'] == report['methods']


def test_parallel_runs_spread_over_the_gpus():
    from fgd_mmrazor.experiments.runs import gpu_slots
    slots = gpu_slots(5, ['2', '3'])
    taken = [slots.get_nowait() for _ in range(5)]
    assert taken == ['2', '3', '2', '3', '2'] and slots.empty()
    assert gpu_slots(3, []) is None  # CPU: no assignment
