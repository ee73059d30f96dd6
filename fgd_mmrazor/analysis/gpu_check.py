"""The summary that ``tools/gpu_check.sh`` prints from what its steps wrote.

    python -m fgd_mmrazor.analysis.gpu_check OUT_DIR [WORK_DIR]

Reads ``OUT_DIR/mmcv.txt``, ``tests.log``, ``benchmark_cuda.json`` and the
demo runs' ``scalars.json`` under ``WORK_DIR`` (default
``OUT_DIR/work``), and prints a Markdown summary. Missing parts are said
to be missing.
"""
import glob
import json
import os.path as osp
import re
import statistics
import sys
from typing import List, Optional

__all__ = ['summarize', 'demo_figures']


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _pytest_summary(text: Optional[str]) -> str:
    if not text:
        return 'not run'
    lines = [ln.strip('= ') for ln in text.splitlines()
             if re.search(r'\d+ (passed|failed|error)', ln)]
    return lines[-1] if lines else 'no summary line (see tests.log)'


def demo_figures(run_dir: str) -> Optional[dict]:
    """Median iteration time (s), peak memory (MB, mmengine's ``memory``:
    ``max_memory_allocated``), the last logged losses and the final
    bbox mAP of a ``tools/train.py`` work dir."""
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        return None
    with open(files[-1]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    train = [r for r in rows if 'loss' in r]
    if not train:
        return None
    times = [r['time'] for r in train[1:] if 'time' in r] or \
        [r['time'] for r in train if 'time' in r]
    val = [r for r in rows if 'coco/bbox_mAP' in r]
    last = train[-1]
    return dict(
        iters=last.get('iter'),
        iter_time_s=statistics.median(times) if times else None,
        memory_mb=max((r.get('memory', 0) for r in train), default=None),
        loss=last.get('loss'),
        imitation={k: v for k, v in last.items() if 'loss_imitation' in k},
        bbox_mAP=val[-1]['coco/bbox_mAP'] if val else None)


def _fmt(value, spec='.3g') -> str:
    return 'n/a' if value is None else format(value, spec)


def summarize(out_dir: str, work_dir: Optional[str] = None) -> str:
    work_dir = work_dir or osp.join(out_dir, 'work')
    lines: List[str] = ['# GPU check', '']
    mmcv = _read(osp.join(out_dir, 'mmcv.txt'))
    lines.append(f'- {mmcv.strip() if mmcv else "mmcv check: not run"}')
    lines.append('- CUDA tests: ' +
                 _pytest_summary(_read(osp.join(out_dir, 'tests.log'))))
    lines += ['', '## Demo distillation (tools/train.py)', '',
              '| run | iterations | median s/iter | peak memory MB | '
              'last loss | imitation losses | bbox mAP |',
              '| --- | --- | --- | --- | --- | --- | --- |']
    for name in ('demo', 'demo_amp'):
        fig = demo_figures(osp.join(work_dir, name))
        if fig is None:
            lines.append(f'| {name} | not run | | | | | |')
            continue
        imitation = ', '.join(f'{k.split("_")[-1]} {v:.3g}'
                              for k, v in fig['imitation'].items())
        lines.append(
            f'| {name} | {fig["iters"]} | {_fmt(fig["iter_time_s"])} | '
            f'{_fmt(fig["memory_mb"], ".0f")} | {_fmt(fig["loss"])} | '
            f'{imitation} | {_fmt(fig["bbox_mAP"])} |')
    bench = _read(osp.join(out_dir, 'benchmark_cuda.json'))
    lines += ['', '## Benchmark (tools/benchmark.py --device cuda)', '']
    if not bench:
        lines.append('not run')
        return '\n'.join(lines)
    res = json.loads(bench)
    rows = [
        ('batch x input', f'{res.get("batch")} x {res.get("img")} px'),
        ('mask, B 16, 640 px, 20 boxes/img (joint)',
         f'{_fmt(res.get("mask_joint_ms"))} ms'),
        ('mask vs the naive loop on the CPU',
         f'{_fmt(res.get("mask_speedup_vs_loop"))}x'),
        ('student step', f'{_fmt(_ms(res, "step_student_s"))} ms'),
        ('teacher forward', f'{_fmt(_ms(res, "step_teacher_fwd_s"))} ms'),
        ('distilled step', f'{_fmt(_ms(res, "step_distill_s"))} ms'),
        ('step overhead vs student + teacher',
         _pct(res.get('distill_overhead'))),
        ('peak memory: student / teacher / distilled',
         ' / '.join(_fmt(res.get(k), '.0f') + ' MB' for k in (
             'peak_mem_student_mb', 'peak_mem_teacher_fwd_mb',
             'peak_mem_distill_mb'))),
        ('peak memory overhead', _pct(res.get('peak_mem_overhead'))),
        ('host-device syncs per step: student / distilled (added)',
         f'{res.get("syncs_student_step")} / {res.get("syncs_distill_step")}'
         f' ({res.get("syncs_distillation")})'),
        ('cells in the mask', _share(res.get('step_mask_coverage'))),
    ]
    lines += ['| figure | value |', '| --- | --- |']
    lines += [f'| {k} | {v} |' for k, v in rows]
    profile = res.get('profile_ms_per_step')
    if profile:
        lines += ['', f'Profile ({res.get("profile_clock")} time, ms per '
                  'step): ' + ', '.join(f'{k} {v:.2f}'
                                        for k, v in profile.items())]
    return '\n'.join(lines)


def _ms(res, key):
    return None if res.get(key) is None else 1e3 * res[key]


def _pct(value) -> str:
    return 'n/a' if value is None else f'{100 * value:+.1f}%'


def _share(value) -> str:
    return 'n/a' if value is None else f'{100 * value:.1f}%'


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit('usage: python -m fgd_mmrazor.analysis.gpu_check OUT_DIR '
                 '[WORK_DIR]')
    print(summarize(*argv[:2]))


if __name__ == '__main__':
    main()
