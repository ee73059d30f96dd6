"""A distillation run killed with SIGKILL mid-epoch resumes with --resume:
iteration count, optimizer state, adapters and LR schedule come back, and
the resumed run ends where an uninterrupted run ends."""
import os
import os.path as osp
import signal
import subprocess
import sys

import torch

from fgd_mmrazor.utils import safe_load
from ..conftest import CONFIGS, REPO
from ..utils import probe_cfg, read_probe, save_demo_teacher

CONFIG = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')
EPOCHS = 3  # x 2 iterations (4 images, batch 2)


def _train(cfg_path, work_dir, *args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg_path,
         '--work-dir', work_dir, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _adapters(state):
    return {k: v for k, v in state.items() if 'connectors' in k}


def test_sigkill_mid_epoch_then_resume(tiny_coco, tmp_path):
    teacher_ckpt = save_demo_teacher(tmp_path / 'teacher.pth')
    options = {'model.teacher_ckpt': teacher_ckpt}

    # Uninterrupted reference run.
    ref_dir = str(tmp_path / 'ref')
    ref_cfg = probe_cfg(CONFIG, tiny_coco, ref_dir, str(tmp_path / 'r.py'),
                        epochs=EPOCHS, options=options)
    proc = _train(ref_cfg, ref_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref_rows = read_probe(ref_dir)
    assert [r['iter'] for r in ref_rows] == list(range(1, 2 * EPOCHS + 1))

    # The same run, killed after iteration 3 (mid-epoch 2; the last
    # checkpoint is epoch_1.pth, after iteration 2).
    work_dir = str(tmp_path / 'work')
    kill_cfg = probe_cfg(CONFIG, tiny_coco, work_dir, str(tmp_path / 'k.py'),
                         kill_at_iter=3, epochs=EPOCHS, options=options)
    proc = _train(kill_cfg, work_dir)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert [r['iter'] for r in read_probe(work_dir)] == [1, 2, 3]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    assert osp.basename(last) == 'epoch_1.pth'
    ckpt = safe_load(last)
    assert ckpt['meta']['iter'] == 2 and ckpt['meta']['epoch'] == 1
    # Lean checkpoints: neither the model state nor the EMA copy holds the
    # frozen teacher.
    for key in ('state_dict', 'ema_state_dict'):
        assert any('architecture.' in k for k in ckpt[key])
        assert not any('teacher.' in k for k in ckpt[key]), key

    # Resume with the unkilled config (same everything, no kill).
    os.remove(osp.join(work_dir, 'probe', 'rank0.jsonl'))
    resume_cfg = probe_cfg(CONFIG, tiny_coco, work_dir,
                           str(tmp_path / 'c.py'), epochs=EPOCHS,
                           options=options)
    proc = _train(resume_cfg, work_dir, '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed epoch: 1, iter: 2' in proc.stdout + proc.stderr
    # The teacher is rebuilt from teacher_ckpt, with its checks.
    assert f'Loaded teacher checkpoint {teacher_ckpt}' in \
        proc.stdout + proc.stderr

    # State restored before the first resumed iteration.
    start = torch.load(
        osp.join(work_dir, 'probe', 'before_train_rank0.pth'))
    # The EMA hook saves the averaged weights as `state_dict` and the
    # trained ones under `ema_state_dict` (keys `module.*`), and swaps them
    # back on resume: the model restarts from the trained weights.
    prefix = 'module.distiller.'
    saved = {k[len(prefix):]: v for k, v in ckpt['ema_state_dict'].items()
             if k.startswith(prefix)}
    assert _adapters(saved)
    for k, v in _adapters(saved).items():
        assert torch.equal(start['distiller'][k], v), k
    assert start['optimizer_steps'] == [
        float(s['step']) for s in ckpt['optimizer']['state'].values()
    ]
    assert set(start['optimizer_steps']) == {2.0}
    teacher_state = safe_load(teacher_ckpt)['state_dict']
    assert set(start['teacher']) == set(teacher_state)
    for k, v in teacher_state.items():
        assert torch.equal(start['teacher'][k], v), k

    # Iterations 3..6 run once each, with the reference LR schedule and
    # (deterministic pipeline) the reference losses.
    rows = read_probe(work_dir)
    assert [r['iter'] for r in rows] == list(range(3, 2 * EPOCHS + 1))
    for row, ref in zip(rows, ref_rows[2:]):
        assert abs(row['lr'] - ref['lr']) < 1e-12, (row, ref)
        for key in ('loss', 'distill.loss_imitation_p3'):
            assert abs(row[key] - ref[key]) <= 1e-4 * abs(ref[key]) + 1e-6, (
                key, row, ref)
    final = safe_load(osp.join(work_dir, f'epoch_{EPOCHS}.pth'))
    ref_final = safe_load(osp.join(ref_dir, f'epoch_{EPOCHS}.pth'))
    assert final['meta']['iter'] == ref_final['meta']['iter'] == 2 * EPOCHS
    for k, v in _adapters(ref_final['state_dict']).items():
        torch.testing.assert_close(final['state_dict'][k], v,
                                   rtol=1e-4, atol=1e-6)
