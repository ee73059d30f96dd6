"""tools/analyze_masks.py and tools/visualize_masks.py on tiny data."""
import glob
import os.path as osp
import subprocess
import sys

from ..conftest import CONFIGS, REPO

DISTILL = osp.join(CONFIGS, 'demo', 'fgd_yolov5n_from_s_trees.py')


def test_visualize_masks_writes_pngs(tiny_coco, tmp_path):
    imgs = sorted(glob.glob(osp.join(tiny_coco, 'images', '*.png')))[:2]
    out = str(tmp_path / 'vis')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'visualize_masks.py'), DISTILL, '--images',
        *imgs, '--out', out, '--ann',
        osp.join(tiny_coco, 'annotations.json')
    ], check=True, cwd=REPO, env={'PYTHONPATH': REPO, 'PATH': '/usr/bin'})
    written = sorted(glob.glob(osp.join(out, '*.png')))
    assert [osp.basename(p) for p in written] == [
        osp.basename(p) for p in imgs
    ]
    from PIL import Image
    assert Image.open(written[0]).size[0] > 100


def test_visualize_distance_of_a_lean_checkpoint(tiny_coco, tmp_path):
    """A distillation checkpoint without the teacher: the distance row
    needs --teacher-ckpt, and is drawn with it."""
    import torch

    from fgd_mmrazor.analysis.masks import MaskSetup
    from ..utils import save_demo_teacher
    teacher = save_demo_teacher(tmp_path / 'teacher.pth')
    ckpt = str(tmp_path / 'distilled.pth')
    state = MaskSetup(DISTILL).model.state_dict()
    assert not any(k.startswith('teacher.') for k in state)
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    img = sorted(glob.glob(osp.join(tiny_coco, 'images', '*.png')))[1]
    out = str(tmp_path / 'vis')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'visualize_masks.py'),
           DISTILL, '--images', img, '--out', out, '--ann',
           osp.join(tiny_coco, 'annotations.json'), '--checkpoint', ckpt]
    env = {'PYTHONPATH': REPO, 'PATH': '/usr/bin'}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and '--teacher-ckpt' in proc.stderr
    subprocess.run(cmd + ['--teacher-ckpt', teacher], check=True, cwd=REPO,
                   env=env)
    assert osp.isfile(osp.join(
        out, osp.basename(img)[:-4] + '_distance.png'))
