"""tools/benchmark_checkpoint.py: the figures it prints describe a lean
checkpoint (no teacher) of the demo pair."""
import json
import os
import os.path as osp
import subprocess
import sys

from ..conftest import CONFIGS, REPO


def test_benchmark_checkpoint_reports_a_lean_checkpoint(tmp_path):
    out = str(tmp_path / 'bench.json')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'benchmark_checkpoint.py'),
         osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py'),
         '--img', '64', '--batch', '1', '--json', out],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(out))
    assert result['teacher_keys_in_checkpoint'] == 0
    assert set(result['checkpoint_parts_mb']) == {
        'state_dict', 'optimizer', 'ema_state_dict'}
    # The model state holds the 1.8 M-parameter student and the demo's
    # 1x1 adapters (0.17 M parameters), in float32: 7-8 MB, well under
    # the 7 M-parameter teacher's 28 MB.
    assert 6 < result['checkpoint_parts_mb']['state_dict'] < 20
    assert result['peak_rss_mb'] >= result['rss_before_build_mb'] > 0
    assert set(result['load_s']) == {'safe_load', 'torch_load'}
    assert all(t > 0 for t in result['load_s'].values())
