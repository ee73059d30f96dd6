"""Table of mean +- std bbox mAP over the report.json files of runs.

    python tools/summarize_results.py work_dirs/demo work_dirs/exp

Rows: teacher, baseline and distilled from every report.json found, and
the ablations (``full_seed*``: whole feature map, ``gt_box_seed*``: inside
the boxes) from their work dir names.
"""
import glob
import json
import os.path as osp
import statistics
import sys


def collect(roots):
    rows = {}
    for root in roots:
        for path in sorted(
                glob.glob(osp.join(root, '**', 'report.json'),
                          recursive=True)):
            with open(path) as f:
                maps = json.load(f)['val_bbox_mAP']
            run = osp.basename(osp.dirname(path))
            for stage, value in maps.items():
                name = stage
                if stage == 'distilled' and run.startswith('full_'):
                    name = 'distilled, whole feature map (no mask)'
                elif stage == 'distilled' and run.startswith('gt_box_'):
                    name = 'distilled, inside GT boxes'
                elif stage == 'distilled':
                    name = 'distilled, imitation mask (psi 0.5)'
                rows.setdefault(name, []).append((value, path))
    return rows


def main():
    rows = collect(sys.argv[1:] or ['work_dirs'])
    print('| model | bbox mAP (mean +- std) | runs | values |')
    print('| --- | --- | --- | --- |')
    for name, vals in rows.items():
        xs = [v for v, _ in vals]
        std = statistics.stdev(xs) if len(xs) > 1 else float('nan')
        print(f'| {name} | {statistics.mean(xs):.4f} +- {std:.4f} | '
              f'{len(xs)} | {", ".join(f"{x:.4f}" for x in xs)} |')


if __name__ == '__main__':
    main()
