"""The summary of tools/gpu_check.sh, from files like its steps write."""
import json
import os

from fgd_mmrazor.analysis.gpu_check import demo_figures, summarize


def _scalars(path, rows):
    os.makedirs(path)
    with open(os.path.join(path, 'scalars.json'), 'w') as f:
        for row in rows:
            f.write(json.dumps(row) + '\n')


def test_summary_reads_every_part(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'mmcv.txt').write_text('mmcv ops: CUDA 13.0, NMS ran on H200\n')
    (out / 'tests.log').write_text('....\n===== 12 passed in 80.1s =====\n')
    _scalars(str(out / 'work' / 'demo' / '20261204_1' / 'vis_data'), [
        dict(iter=7, loss=3.0, time=0.5, memory=900,
             **{'distill.loss_imitation_p3': 0.2}),
        dict(iter=14, loss=2.0, time=0.1, memory=1000,
             **{'distill.loss_imitation_p3': 0.1}),
        dict(iter=21, loss=1.5, time=0.3, memory=950,
             **{'distill.loss_imitation_p3': 0.05}),
        {'coco/bbox_mAP': 0.012, 'step': 3}])
    (out / 'benchmark_cuda.json').write_text(json.dumps(dict(
        batch=16, img=640, mask_joint_ms=1.25, step_student_s=0.1,
        step_teacher_fwd_s=0.05, step_distill_s=0.16,
        distill_overhead=0.0667, syncs_student_step=5,
        syncs_distill_step=8, syncs_distillation=3,
        profile_ms_per_step={'imitation mask': 0.5},
        profile_clock='cuda kernels')))
    fig = demo_figures(str(out / 'work' / 'demo'))
    assert fig['iters'] == 21 and fig['memory_mb'] == 1000
    assert fig['iter_time_s'] == 0.2  # median after the first log row
    assert fig['bbox_mAP'] == 0.012
    text = summarize(str(out))
    assert 'NMS ran on H200' in text and '12 passed in 80.1s' in text
    assert '| demo | 21 | 0.2 | 1000 | 1.5 | p3 0.05 | 0.012 |' in text
    assert '| demo_amp | not run |' in text
    assert '| distilled step | 160 ms |' in text
    assert '| step overhead vs student + teacher | +6.7% |' in text
    assert '5 / 8 (3)' in text and 'imitation mask 0.50' in text


def test_summary_says_what_is_missing(tmp_path):
    text = summarize(str(tmp_path))
    assert 'mmcv check: not run' in text and 'CUDA tests: not run' in text
    assert text.rstrip().endswith('not run')
