"""K folds of a COCO file: by image and by group, every image val once,
groups never split, balanced, deterministic; and a folded comparison end
to end (teachers per fold, per-fold and pooled statistics, resume)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from fgd_mmrazor.experiments.folds import fold_options, make_folds

from ..conftest import REPO, make_tiny_coco
from .test_compare import DEMO, STUDENT, TEACHER, _tiny_config


def _coco(path, names):
    images = [dict(id=i + 1, file_name=n, width=10, height=10)
              for i, n in enumerate(names)]
    anns = [dict(id=i + 1, image_id=i + 1, category_id=1,
                 bbox=[1, 1, 2, 2], area=4, iscrowd=0)
            for i in range(len(names))]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='Tree')]), f)
    return str(path)


def _val_names(out, fold):
    with open(osp.join(out, str(fold), 'val.json')) as f:
        return [i['file_name'] for i in json.load(f)['images']]


def test_folds_by_group_never_split_a_scene(tmp_path):
    sizes = ((1, 4), (2, 3), (3, 2), (4, 2), (5, 1))
    names = [f'scene{s}_tile{t}.png' for s, n in sizes for t in range(n)]
    ann = _coco(tmp_path / 'a.json', names)
    out = str(tmp_path / 'folds')
    summary = make_folds(ann, out, 3, group_regex=r'^(scene\d+)_')
    seen = []
    for fold in range(3):
        val = _val_names(out, fold)
        scenes = {n.split('_')[0] for n in val}
        assert sorted(scenes) == summary['folds'][str(fold)]['groups']
        with open(osp.join(out, str(fold), 'train.json')) as f:
            train = json.load(f)
        # no scene on both sides; every box comes along with its image
        assert not scenes & {i['file_name'].split('_')[0]
                             for i in train['images']}
        assert len(train['annotations']) == len(train['images'])
        assert len(val) + len(train['images']) == len(names)
        seen += val
    assert sorted(seen) == sorted(names)
    # largest first onto the emptiest fold: 4 | 3 | 2+2, then 1 -> fold 1
    sizes = sorted(len(_val_names(out, f)) for f in range(3))
    assert sizes == [4, 4, 4]
    again = make_folds(ann, str(tmp_path / 'again'), 3,
                       group_regex=r'^(scene\d+)_')
    assert [r['groups'] for r in again['folds'].values()] == \
        [r['groups'] for r in summary['folds'].values()]


def test_folds_by_image_and_errors(tmp_path):
    ann = _coco(tmp_path / 'a.json', [f'{i}.png' for i in range(10)])
    summary = make_folds(ann, str(tmp_path / 'f'), 5)
    assert [r['val']['images'] for r in summary['folds'].values()] == \
        [2] * 5
    with pytest.raises(ValueError, match='cannot make'):
        make_folds(ann, str(tmp_path / 'g'), 11)
    with pytest.raises(ValueError, match='does not match'):
        make_folds(ann, str(tmp_path / 'h'), 2, group_regex='^scene')
    opts = fold_options('t.json', 'v.json', img_prefix='')
    assert opts['val_evaluator.ann_file'] == 'v.json'
    assert opts['train_dataloader.dataset.data_prefix.img'] == ''


def test_folded_comparison_end_to_end(tmp_path):
    """2 folds of a 4-image set (a box in every image), 1 seed, FGFI: a
    teacher per fold trained on that fold's train images, the runs of each
    fold on its files, per-fold and pooled statistics; a second call
    trains nothing."""
    tiny_coco = str(tmp_path / 'data')
    make_tiny_coco(tiny_coco, num_images=4)
    folds_dir = str(tmp_path / 'folds')
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'make_folds.py'),
                    osp.join(tiny_coco, 'annotations.json'), '--k', '2',
                    '--out', folds_dir], check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=REPO))
    configs = tmp_path / 'configs'
    configs.mkdir()
    student = _tiny_config(STUDENT, tiny_coco, str(configs / 'student.py'))
    fgfi = _tiny_config(osp.join(DEMO, 'fgd_yolov5n_from_mnv2_trees.py'),
                        tiny_coco, str(configs / 'fgfi.py'))
    teacher = _tiny_config(TEACHER, tiny_coco, str(configs / 'teacher.py'))
    cfg = Config.fromfile(teacher)
    cfg.model.backbone.init_cfg = None  # no pretrained download
    cfg.dump(teacher)
    work_dir = str(tmp_path / 'compare')
    cmd = [
        sys.executable, osp.join(REPO, 'tools', 'compare_methods.py'),
        '--student-config', student, '--methods', f'fgfi={fgfi}',
        '--seeds', '0', '--work-dir', work_dir, '--threads', '1',
        '--no-weight-rule', '--fold-dir', folds_dir, '--folds', '0', '1',
        '--train-teacher', teacher, '--teacher-epochs', '1',
        '--teacher-config', teacher
    ]
    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    with open(osp.join(work_dir, 'compare.json')) as f:
        report = json.load(f)
    assert sorted(report['folds']) == ['0', '1']
    # each fold's teacher and runs trained on its own train file
    for fold in ('0', '1'):
        train_ann = osp.join(folds_dir, fold, 'train.json')
        t_cfg = Config.fromfile(osp.join(work_dir, 'configs',
                                         f'teacher_fold{fold}.py'))
        assert t_cfg.train_dataloader.dataset.ann_file == train_ann
        run_cfg = Config.fromfile(osp.join(work_dir, 'configs',
                                           f'fold{fold}', 'fgfi_seed0.py'))
        assert run_cfg.train_dataloader.dataset.ann_file == train_ann
        assert run_cfg.val_evaluator.ann_file == osp.join(
            folds_dir, fold, 'val.json')
        assert run_cfg.model.teacher_ckpt == \
            report['settings']['teacher_ckpt'][fold]
        assert f'teacher_fold{fold}' in run_cfg.model.teacher_ckpt
        assert 0 <= report['teachers'][fold]['bbox_mAP'] <= 1
    # pooled over the (fold, seed) pairs = the two folds' differences
    diffs = []
    for fold in ('0', '1'):
        res = {}
        for name in ('alone', 'fgfi'):
            with open(osp.join(work_dir, 'runs', f'fold{fold}',
                               f'{name}_seed0', 'result.json')) as f:
                res[name] = json.load(f)['bbox_mAP']
        diffs.append(res['fgfi'] - res['alone'])
        per = report['folds'][fold]['fgfi']['minus_alone']['bbox_mAP']
        assert per['mean'] == pytest.approx(diffs[-1]) and per['n'] == 1
    pooled = report['methods']['fgfi']['minus_alone']['bbox_mAP']
    assert pooled['n'] == 2 and pooled['pairs'] == ['0/0', '1/0']
    assert pooled['mean'] == pytest.approx(sum(diffs) / 2)
    assert pooled['ahead'] == sum(d > 0 for d in diffs)
    with open(osp.join(work_dir, 'compare.md')) as f:
        text = f.read()
    assert 'Per fold:' in text and 'Pooled over every fold' in text
    assert osp.getsize(osp.join(work_dir, 'compare.png')) > 0
    out = subprocess.run(cmd, check=True, env=env, capture_output=True,
                         text=True)
    assert '4 runs (2 per seed x 1 seeds x 2 folds): 4 done, 0 to train' \
        in out.stdout + out.stderr
