"""tools/summarize_results.py: rows, per-seed pairing and the paired
difference's standard error, from hand-made report files."""
import json
import os
import os.path as osp
import subprocess
import sys

from ..conftest import REPO


def _report(root, run, seed, maps, seed_in_json=True):
    d = osp.join(root, run)
    os.makedirs(d)
    report = dict(val_bbox_mAP=maps)
    if seed_in_json:
        report['seed'] = seed
    with open(osp.join(d, 'report.json'), 'w') as f:
        json.dump(report, f)


def test_paired_rows(tmp_path):
    root = str(tmp_path)
    # baselines 0.10 / 0.20 / 0.30; distilled +0.01 / +0.03 / -0.01
    for seed, base in enumerate([0.10, 0.20, 0.30]):
        _report(root, f'baseline_seed{seed}', seed, dict(baseline=base))
    for seed, value in enumerate([0.11, 0.23, 0.29]):
        # the seed of the last run comes from the directory name only
        _report(root, f'main_seed{seed}', seed, dict(distilled=value),
                seed_in_json=seed < 2)
    _report(root, 'gt_box_seed1', 1, dict(distilled=0.15))
    _report(root, 'baseline_seed10', 10, dict(baseline=0.20))
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'summarize_results.py'),
         root],
        capture_output=True, text=True, check=True).stdout
    rows = {line.split(' | ')[0].lstrip('| '): line
            for line in out.splitlines() if line.startswith('| ')}
    # listed by seed, 10 after 2 (not in the directories' text order)
    assert '0.2000 +- 0.0816 | 4 | 0.1000 (0), 0.2000 (1), 0.3000 (2), ' \
        '0.2000 (10) |' in rows['baseline']
    main = rows['distilled, imitation mask (psi 0.5)']
    # differences 0.01, 0.03, -0.01: mean 0.01, stdev 0.02, s.e. 0.0115
    assert main.endswith('+0.0100 +- 0.0115 s.e. (3 seeds) |')
    assert '0.1100 (0), 0.2300 (1), 0.2900 (2)' in main
    assert rows['distilled, inside GT boxes'].endswith('-0.0500 (1 seed) |')
    assert rows['baseline'].endswith('|  |')


def test_compare_methods_runs_pair_with_reports(tmp_path):
    """result.json of tools/compare_methods.py runs: 'alone' is the
    baseline that report.json runs of the same seed pair with."""
    root = str(tmp_path)
    for seed, value in ((3, 0.10), (4, 0.20)):
        d = osp.join(root, 'compare', 'runs', f'alone_seed{seed}')
        os.makedirs(d)
        with open(osp.join(d, 'result.json'), 'w') as f:
            json.dump(dict(name='alone', seed=seed, bbox_mAP=value), f)
    d = osp.join(root, 'compare', 'runs', 'cwd_seed3')
    os.makedirs(d)
    with open(osp.join(d, 'result.json'), 'w') as f:
        json.dump(dict(name='cwd', seed=3, bbox_mAP=0.13), f)
    for seed, value in ((3, 0.12), (4, 0.21)):
        d = osp.join(root, 'final', f'scratch_seed{seed}')
        os.makedirs(d)
        with open(osp.join(d, 'report.json'), 'w') as f:
            json.dump(dict(seed=seed, val_bbox_mAP=dict(distilled=value)), f)
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'summarize_results.py'),
         osp.join(root, 'compare'), osp.join(root, 'final')],
        capture_output=True, text=True, check=True).stdout
    rows = {line.split(' | ')[0].lstrip('| '): line
            for line in out.splitlines() if line.startswith('| ')}
    # differences 0.02, 0.01: mean 0.015, s.e. 0.005
    assert rows['distilled, scratch'].endswith(
        '+0.0150 +- 0.0050 s.e. (2 seeds) |')
    assert rows['distilled, cwd'].endswith('+0.0300 (1 seed) |')
    assert '| 2 |' in rows['baseline']
