"""The method on a CUDA GPU (skipped without one; `tools/gpu_check.sh` runs
them): masks, the sparse adapters, the fp32 imitation path under autocast,
GradScaler, host-device syncs, the safe loader and training through
`tools/train.py`, with and without `--amp`."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from collections import Counter

import pytest
import torch
from mmrazor.registry import MODELS

from fgd_mmrazor.analysis.benchmark import sync_sites
from fgd_mmrazor.ops import imitation_masks
from fgd_mmrazor.ops.masked_conv import masked_conv2d_cells, mask_cells
from fgd_mmrazor.utils import safe_load
from ..conftest import CONFIGS, REPO
from ..test_models.conftest import (TWO_IMAGE_BOXES, three_level_algo,
                                    three_level_cfg, train_batch)
from ..utils import probe_cfg, read_probe, save_demo_teacher

pytestmark = pytest.mark.cuda

DEMO = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')
ANCHORS = [torch.tensor([[10., 13.], [16., 30.], [33., 23.]]),
           torch.tensor([[30., 61.], [62., 45.], [59., 119.]]),
           torch.tensor([[116., 90.], [156., 198.], [373., 326.]])]
STRIDES = [8, 16, 32]


def _boxes(num_imgs, num_boxes, img, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(num_imgs):
        n = 0 if b == 1 else num_boxes  # one image without boxes
        wh = torch.rand(n, 2, generator=g) * img * 0.5 + 2
        xy = torch.rand(n, 2, generator=g) * (img - wh)
        out.append(torch.cat([xy, xy + wh], 1))
    return out


@pytest.mark.parametrize('joint', [True, False])
@pytest.mark.parametrize('offset', [0.5, 0.0])
def test_masks_on_cuda_equal_the_cpus(joint, offset):
    sizes = [(40, 48), (20, 24), (10, 12)]
    for seed in range(5):
        boxes = _boxes(4, 30, 320, seed)
        cpu = imitation_masks(boxes, sizes, STRIDES, ANCHORS, joint=joint,
                              center_offset=offset)
        gpu = imitation_masks([b.cuda() for b in boxes], sizes, STRIDES,
                              ANCHORS, joint=joint, center_offset=offset)
        assert sum(int(m.sum()) for m in cpu) > 0
        for c, g in zip(cpu, gpu):
            assert g.is_cuda and torch.equal(c, g.cpu())


def test_mask_cells_match_nonzero_on_cuda():
    masks = imitation_masks([b.cuda() for b in _boxes(4, 30, 320, 0)],
                            [(40, 48), (20, 24), (10, 12)], STRIDES, ANCHORS)
    for mask, cells in zip(masks, mask_cells(masks)):
        for got, want in zip(cells, torch.nonzero(mask, as_tuple=True)):
            assert torch.equal(got, want)


@pytest.mark.parametrize('dtype', [None, torch.float16])
def test_sparse_adapter_equals_dense_on_cuda(dtype):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 3, padding=1).cuda()
    feat = torch.randn(2, 32, 12, 16, device='cuda', requires_grad=True)
    mask = torch.rand(2, 12, 16, device='cuda') > 0.8
    with torch.autocast('cuda', dtype=dtype or torch.float16,
                        enabled=dtype is not None):
        dense = conv(feat).permute(0, 2, 3, 1)[mask]
        sparse, _ = masked_conv2d_cells(feat, mask, conv)
    assert sparse.dtype == dense.dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype is None else \
        dict(rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(sparse, dense, **tol)
    grad_dense, = torch.autograd.grad(dense.float().pow(2).sum(), feat)
    grad_sparse, = torch.autograd.grad(sparse.float().pow(2).sum(), feat)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype is None else \
        dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(grad_sparse, grad_dense, **tol)


def _algo(teacher_ckpt, sparse=True):
    # seed 0: the same student and adapters every time
    return three_level_algo(teacher_ckpt, sparse_adapters=sparse).cuda()


def _batch(algo, seed=0):
    return train_batch(algo, TWO_IMAGE_BOXES, seed=seed)


@pytest.mark.parametrize('sparse', [True, False])
def test_imitation_losses_stay_fp32_under_fp16_autocast(teacher_ckpt,
                                                        sparse):
    algo = _algo(teacher_ckpt, sparse)
    data = _batch(algo)
    with torch.autocast('cuda', dtype=torch.float16):
        losses = algo(**data, mode='loss')
    imitation = {k: v.detach() for k, v in losses.items()
                 if 'imitation' in k}
    assert len(imitation) == 3
    for name, loss in imitation.items():
        assert loss.dtype == torch.float32, name
        assert torch.isfinite(loss) and float(loss) >= 0, name
    assert sum(float(v) for v in imitation.values()) > 0
    # the networks did run in fp16; the distiller reads fp32 features
    recorded = algo.distiller.student_recorders.recorders[
        'feat_level0'].data_buffer[0]
    assert recorded.dtype == torch.float16
    assert algo.distiller.features('level0')[0].dtype == torch.float32


def test_sparse_equals_dense_in_the_distiller_on_cuda(teacher_ckpt):
    results = []
    for sparse in (True, False):
        algo = _algo(teacher_ckpt, sparse)
        with torch.autocast('cuda', dtype=torch.float16):
            losses = algo(**_batch(algo), mode='loss')
        imitation = sum(v for k, v in losses.items() if 'imitation' in k)
        imitation.backward()
        grads = [p.grad.clone()
                 for p in algo.distiller.connectors.parameters()]
        results.append((imitation.detach(), grads))
    (loss_s, grads_s), (loss_d, grads_d) = results
    # the same fp16 features, adapters in fp32: equal up to the order of
    # the sums (the gradients' largest entries are about 1e-2)
    torch.testing.assert_close(loss_s, loss_d, rtol=1e-4, atol=1e-6)
    for gs, gd in zip(grads_s, grads_d):
        torch.testing.assert_close(gs, gd, rtol=1e-3, atol=1e-5)


def test_gradscaler_steps_stay_finite(teacher_ckpt):
    algo = _algo(teacher_ckpt)
    params = [p for p in algo.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler('cuda') if hasattr(
        torch.amp, 'GradScaler') else torch.cuda.amp.GradScaler()
    for step in range(4):
        with torch.autocast('cuda', dtype=torch.float16):
            losses = algo(**_batch(algo, seed=step), mode='loss')
        loss, _ = algo.parse_losses(losses)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        assert torch.isfinite(loss), step
    assert all(torch.isfinite(p).all() for p in params)
    assert 0 < scaler.get_scale() < float('inf')


# The distillation's own host-device waits per step: reading the packed
# boxes' image counts, the number of rows the boxes mark (the mask) and
# the masked cells of all levels (the sparse adapters). docs/benchmarks.md
MAX_DISTILLATION_SYNCS = 3


def test_distillation_adds_at_most_three_syncs_per_step(teacher_ckpt):
    algo = _algo(teacher_ckpt)
    data = _batch(algo)

    def fresh():  # the YOLOv5 head rewrites the boxes in place
        samples = dict(data['data_samples'])
        samples['bboxes_labels'] = samples['bboxes_labels'].clone()
        return dict(inputs=data['inputs'], data_samples=samples)

    def student_only():
        algo.student(**fresh(), mode='loss')

    def distilled():
        algo(**fresh(), mode='loss')

    for fn in (student_only, distilled):  # warm-up (caches, allocator)
        fn()
    student, distill = sync_sites(student_only), sync_sites(distilled)
    own = Counter(distill) - Counter(student)
    print(f'syncs per step: student {len(student)}, distilled '
          f'{len(distill)}; the distillation\'s own: {dict(own)}')
    assert 0 < sum(own.values()) <= MAX_DISTILLATION_SYNCS, \
        (student, distill)
    assert all(site.startswith('fgd_mmrazor') for site in own), own


def test_safe_load_maps_to_cuda(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': {'w': torch.randn(3, 4)}, 'meta': {}}, path)
    ckpt = safe_load(path, map_location='cuda')
    assert ckpt['state_dict']['w'].is_cuda


@pytest.mark.parametrize('amp', [False, True])
def test_train_demo_config_on_cuda(tiny_coco, tmp_path, amp):
    """A few iterations of the demo distillation through tools/train.py on
    the GPU: finite losses, a checkpoint with the adapters."""
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    work = str(tmp_path / 'work')
    cfg = probe_cfg(DEMO, tiny_coco, work, str(tmp_path / 'cfg.py'),
                    epochs=2, options={'model.teacher_ckpt': teacher})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg,
         '--work-dir', work] + (['--amp'] if amp else []),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_probe(work)
    losses = [v for r in rows for k, v in r.items() if 'loss' in k]
    assert len(rows) == 4 and losses
    assert all(torch.isfinite(torch.tensor(v)) for v in losses)
    assert any('imitation' in k for k in rows[-1])
    # trained on the GPU: mmengine logs its memory with every loss row
    scalars, = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    logged = [json.loads(line) for line in open(scalars)]
    logged = [r for r in logged if 'loss' in r]
    assert logged and all(r.get('memory', 0) > 0 for r in logged)
    ckpt = safe_load(osp.join(work, 'epoch_2.pth'), map_location='cpu')
    assert any('connectors' in k for k in ckpt['state_dict'])


def test_feature_check_runs_on_a_student_already_on_the_gpu(teacher_ckpt):
    """A student built and moved to the GPU before the algorithm: the
    feature check feeds each model an image on its own device, so a wrong
    channel count is an error, not a warning that the check could not
    run."""
    from mmengine.hub import get_model

    from ..test_models.conftest import YOLOV5_N
    path, _ = teacher_ckpt
    cfg = three_level_cfg(path)
    cfg['architecture'] = get_model(YOLOV5_N, pretrained=False).cuda()
    cfg['distiller']['student_channels'] = [64, 128, 999]
    with pytest.raises(ValueError, match='999'):
        MODELS.build(cfg)
