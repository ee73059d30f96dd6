"""tools/dist_train.sh: 2 processes (torchrun, gloo on CPU) train the
distillation config; the adapters stay in sync across ranks, and the run
starts from the losses of a 1-process run with the same total batch."""
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.utils import digit_version

from fgd_mmrazor.utils import safe_load
from ..conftest import CONFIGS, REPO, make_tiny_coco
from ..utils import probe_cfg, read_probe, save_demo_teacher

CONFIG = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')
# torch 1.13's torchrun fails on Python 3.11 before starting any worker
# ("'NoneType' object has no attribute 'get'" in elastic's to_map, a known
# torch bug fixed in 2.0). There the test starts the two ranks itself with
# the environment torchrun would give them; the training code is the same.
TORCHRUN_BROKEN = digit_version(torch.__version__) < digit_version('2.0.0') \
    and sys.version_info >= (3, 11)


def _launch(cfg_path, work_dir, nproc, port):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
               PORT=str(port))
    if nproc == 1:
        cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg_path,
               '--work-dir', work_dir]
        return [subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=600)]
    if not TORCHRUN_BROKEN:
        cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg_path,
               str(nproc), '--work-dir', work_dir]
        return [subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=600)]
    procs = []
    for rank in range(nproc):
        rank_env = dict(env, RANK=str(rank), LOCAL_RANK=str(rank),
                        WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
                        MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg_path,
               '--work-dir', work_dir, '--launcher', 'pytorch']
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=rank_env,
                                      stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out,
                                                   err))
    return results


def _check(results):
    for r in results:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _paired_coco(root, extra_boxes=None):
    """Each of 2 generated images twice (the same file), in the order
    A, A', B, B'; the second copy of image ``i`` also gets the box
    ``extra_boxes[i]`` (xywh) when given."""
    make_tiny_coco(root, num_images=2)
    ann_file = osp.join(root, 'annotations.json')
    with open(ann_file) as f:
        ann = json.load(f)
    images, anns = [], []
    for idx, src in enumerate(ann['images']):
        boxes = [a for a in ann['annotations'] if a['image_id'] == src['id']]
        twin = list(boxes)
        if extra_boxes:
            box = extra_boxes[idx]
            twin.append(dict(boxes[0], bbox=box, area=box[2] * box[3]))
        for group in (boxes, twin):
            new_id = len(images) + 1
            images.append(dict(src, id=new_id))
            for a in group:
                anns.append(dict(a, id=len(anns) + 1, image_id=new_id))
    ann.update(images=images, annotations=anns)
    with open(ann_file, 'w') as f:
        json.dump(ann, f)
    return root


def _twin_coco(root):
    """4 images A, A, B, B: without shuffling, the 1-process batch is
    (A, A, B, B) and each of the two ranks gets (A, B). Duplicated samples
    leave BatchNorm's batch statistics and every per-image mean unchanged,
    so both runs must compute the same losses and gradients."""
    return _paired_coco(root)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A 2-process run (batch 2 each) and a 1-process run (batch 4)."""
    tmp = tmp_path_factory.mktemp('ddp')
    data = _twin_coco(str(tmp / 'data'))
    teacher_ckpt = save_demo_teacher(tmp / 'teacher.pth')
    out = {}
    for nproc, batch in ((2, 2), (1, 4)):
        work_dir = str(tmp / f'work{nproc}')
        cfg = probe_cfg(CONFIG, data, work_dir,
                        str(tmp / f'cfg{nproc}.py'), epochs=2,
                        batch_size=batch,
                        options={'model.teacher_ckpt': teacher_ckpt,
                                 'default_hooks.checkpoint.interval': 2,
                                 'train_dataloader.sampler.shuffle': False})
        _check(_launch(cfg, work_dir, nproc, port=29731 + nproc))
        out[nproc] = work_dir
    return out


def test_two_process_ddp_trains_with_adapters_in_sync(runs):
    work_dir = runs[2]
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    rows = [json.loads(line) for line in open(files[0]) if 'loss' in line]
    assert len(rows) == 2  # 4 images / (2 processes x 2) = 1 iteration/epoch
    for r in rows:
        for level in ('p3', 'p4', 'p5'):
            assert math.isfinite(r[f'distill.loss_imitation_{level}'])
    ckpt = safe_load(osp.join(work_dir, 'epoch_2.pth'))
    key = 'distiller.connectors.adapt_p3.conv_module.conv.weight'
    assert key in ckpt['state_dict']
    # Each rank's adapters after training: trained, and equal across ranks
    # (DDP all-reduced their gradients; no unused-parameter error above).
    rank0 = torch.load(osp.join(work_dir, 'probe', 'distiller_rank0.pth'))
    rank1 = torch.load(osp.join(work_dir, 'probe', 'distiller_rank1.pth'))
    start = torch.load(osp.join(work_dir, 'probe', 'before_train_rank0.pth'))
    adapters = [k for k in rank0 if 'connectors' in k]
    assert len(adapters) == 6  # weight + bias of 3 levels
    for k in adapters:
        assert torch.equal(rank0[k], rank1[k]), k
    # The small boxes of the 96x64 input are imitated on p3: its adapter
    # was trained (the others only decay: no mask cell, no gradient).
    for k in adapters:
        if 'adapt_p3' in k:
            assert not torch.equal(rank0[k], start['distiller'][k]), k


def test_two_processes_match_one_process_with_the_same_total_batch(runs):
    """Same total batch (see ``_twin_coco``): each rank's losses equal the
    1-process losses at iteration 1, and again at iteration 2, after one
    all-reduced optimizer step (YOLOv5's losses are scaled by the world
    size, so DDP's gradient average equals the 1-process gradient)."""
    one = read_probe(runs[1])
    ranks = [read_probe(runs[2], r) for r in (0, 1)]
    assert [r['iter'] for r in one] == [r['iter'] for r in ranks[0]] == [1, 2]
    keys = ['student.loss_obj', 'student.loss_bbox'] + [
        f'distill.loss_imitation_{lv}' for lv in ('p3', 'p4', 'p5')
    ]
    assert one[0]['distill.loss_imitation_p3'] > 0
    for it in (0, 1):
        for rank in ranks:
            for key in keys:
                assert rank[it][key] == pytest.approx(
                    one[it][key], rel=1e-3, abs=1e-6), (key, it, one, ranks)
            assert rank[it]['lr'] == pytest.approx(one[it]['lr'])


def _unequal_coco(root):
    """4 images A, A', B, B' where A' has A's pixels (the same file) and B'
    B's, but more boxes: A' adds a small one, B' a large one. Without
    shuffling and one image per rank and iteration, rank 0 gets A then B
    and rank 1 A' then B'; a 1-process batch of 2 is (A, A') then (B, B').
    BatchNorm sees the same pixels on the ranks and in the 1-process batch,
    while the ranks' mask cells (N_p) differ."""
    return _paired_coco(root, extra_boxes=[[60.0, 10.0, 16.0, 16.0],
                                           [8.0, 8.0, 80.0, 60.0]])


@pytest.fixture(scope='module')
def unequal_runs(tmp_path_factory):
    """2 processes (batch 1 each, unequal boxes) and 1 process (batch 2),
    2 iterations, with the student's learning rate at 0 (only the adapters
    learn, so that iteration 2 compares the imitation alone: YOLOv5's own
    losses are normalised per rank). The 2-process run also unfreezes the
    teacher after iteration 1, which DistillGuardHook must undo."""
    tmp = tmp_path_factory.mktemp('ddp_unequal')
    data = _unequal_coco(str(tmp / 'data'))
    teacher_ckpt = save_demo_teacher(tmp / 'teacher.pth')
    out = {}
    for nproc, batch in ((2, 1), (1, 2)):
        work_dir = str(tmp / f'work{nproc}')
        cfg = probe_cfg(
            CONFIG, data, work_dir, str(tmp / f'cfg{nproc}.py'), epochs=1,
            batch_size=batch,
            probe_options=dict(
                record_grads=True,
                tamper_teacher_after_iter=1 if nproc == 2 else 0),
            options={'model.teacher_ckpt': teacher_ckpt,
                     'train_dataloader.sampler.shuffle': False,
                     'optim_wrapper.paramwise_cfg.custom_keys': {
                         'architecture': dict(lr_mult=0.0,
                                              decay_mult=0.0)}})
        results = _launch(cfg, work_dir, nproc, port=29741 + nproc)
        _check(results)
        out[nproc] = (work_dir, ''.join(r.stdout + r.stderr
                                        for r in results))
    return out


def test_unequal_boxes_per_rank_give_the_one_process_loss(unequal_runs):
    """One N_p over all ranks: the mean of the ranks' imitation losses and
    of their adapter gradients equals the 1-process loss and gradient at
    iterations 1 and 2 (a per-rank N_p would not: the ranks' mask counts
    differ)."""
    one = read_probe(unequal_runs[1][0])
    ranks = [read_probe(unequal_runs[2][0], r) for r in (0, 1)]
    levels = ('p3', 'p4', 'p5')
    keys = [f'distill.loss_imitation_{lv}' for lv in levels]
    # The ranks' own shares differ (their boxes do).
    for it in (0, 1):
        assert any(ranks[0][it][k] != pytest.approx(ranks[1][it][k],
                                                    rel=1e-3) for k in keys)
    assert one[0][keys[0]] > 0
    for it in (0, 1):
        for key in keys:
            mean = (ranks[0][it][key] + ranks[1][it][key]) / 2
            assert mean == pytest.approx(one[it][key], rel=1e-5,
                                         abs=1e-8), (key, it)
    grads_one = torch.load(
        osp.join(unequal_runs[1][0], 'probe', 'grads_rank0.pth'))
    grads = [torch.load(osp.join(unequal_runs[2][0], 'probe',
                                 f'grads_rank{r}.pth')) for r in (0, 1)]
    assert len(grads_one) == len(grads[0]) == 2
    for it in (0, 1):
        assert len(grads_one[it]) == 6  # weight + bias of 3 adapters
        for name, ref in grads_one[it].items():
            mean = (grads[0][it][name] + grads[1][it][name]) / 2
            # float sums in another order: tight relative to the scale
            torch.testing.assert_close(mean, ref, rtol=1e-4,
                                       atol=1e-4 * float(ref.abs().max()))
        assert grads_one[it]['connectors.adapt_p3.conv_module.conv.weight'] \
            .abs().sum() > 0


def test_guard_refreezes_a_teacher_under_ddp(unequal_runs):
    """The teacher unfrozen after iteration 1 is back in eval mode and
    frozen before iteration 2 runs, on both ranks, with a warning."""
    work_dir, output = unequal_runs[2]
    for rank in (0, 1):
        rows = read_probe(work_dir, rank)
        assert [r['teacher_frozen'] for r in rows] == [True, True]
    assert 'the teacher was in train mode' in output
    assert 'required gradients; froze them' in output


def test_guard_refuses_an_optimizer_without_adapters_under_ddp(tmp_path):
    data = _twin_coco(str(tmp_path / 'data'))
    teacher_ckpt = save_demo_teacher(tmp_path / 'teacher.pth')
    work_dir = str(tmp_path / 'work')
    cfg = probe_cfg(CONFIG, data, work_dir, str(tmp_path / 'cfg.py'),
                    options={'model.teacher_ckpt': teacher_ckpt,
                             'optim_wrapper.constructor':
                             'StudentOnlyOptimWrapperConstructor'})
    results = _launch(cfg, work_dir, 2, port=29751)
    output = ''.join(r.stdout + r.stderr for r in results)
    assert any(r.returncode != 0 for r in results), output[-3000:]
    assert 'does not hold the adapter parameters' in output, output[-3000:]
    assert not osp.exists(osp.join(work_dir, 'probe', 'rank0.jsonl'))
