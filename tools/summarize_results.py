"""Table of mean +- std bbox mAP over the report.json files of runs.

    python tools/summarize_results.py work_dirs/demo work_dirs/exp

Rows: teacher, baseline and distilled from every report.json found. A
distilled run's row is named after its work dir (``<name>_seed<N>``):
``main`` (or a dir without that pattern, e.g. ``work_dirs/demo``) is the
default imitation mask, ``full`` the whole feature map, ``gt_box`` inside
the boxes, any other name its own row. The last column pairs each
distilled run with the baseline of the same seed (the seed is read from
``report.json``, or for reports without one from the dir name) and
gives the mean difference with its standard error over the seeds.

The runs of ``tools/compare_methods.py`` (``runs/<name>_seed<N>/
result.json``) are read too: ``alone`` is the baseline, any other name
the row ``distilled, <name>``.
"""
import glob
import json
import os.path as osp
import re
import statistics
import sys

from fgd_mmrazor.experiments.stats import mean_se

NAMES = {
    'main': 'distilled, imitation mask (psi 0.5)',
    'full': 'distilled, whole feature map (no mask)',
    'gt_box': 'distilled, inside GT boxes',
}


def _seed(report_json, report):
    """The seed of a run: ``report['seed']``, or for reports without one
    the ``_seed<N>`` of their dir name."""
    if report.get('seed') is not None:
        return int(report['seed'])
    found = re.search(r'_seed(\d+)$', osp.basename(osp.dirname(report_json)))
    return int(found.group(1)) if found else None


def collect(roots):
    """{row name: [(mAP, seed, path)]}"""
    rows = {}
    for root in roots:
        for path in sorted(
                glob.glob(osp.join(root, '**', 'report.json'),
                          recursive=True)):
            with open(path) as f:
                report = json.load(f)
            maps = report['val_bbox_mAP']
            run = osp.basename(osp.dirname(path))
            found = re.match(r'(.+)_seed\d+$', run)
            kind = found.group(1) if found else 'main'
            seed = _seed(path, report)
            for stage, value in maps.items():
                name = stage
                if stage == 'distilled':
                    name = NAMES.get(kind, f'distilled, {kind}')
                rows.setdefault(name, []).append((value, seed, path))
        for path in sorted(
                glob.glob(osp.join(root, '**', 'result.json'),
                          recursive=True)):
            with open(path) as f:
                result = json.load(f)
            if 'name' not in result or 'bbox_mAP' not in result:
                continue
            name = 'baseline' if result['name'] == 'alone' else \
                f'distilled, {result["name"]}'
            rows.setdefault(name, []).append(
                (result['bbox_mAP'], int(result['seed']), path))
    return rows


def paired_difference(diffs):
    """``mean +- standard error (n seeds)`` of per-seed differences
    (:func:`fgd_mmrazor.experiments.mean_se`)."""
    stat = mean_se(diffs)
    if stat['n'] < 2:
        return f'{stat["mean"]:+.4f} (1 seed)'
    return f'{stat["mean"]:+.4f} +- {stat["se"]:.4f} s.e. ({stat["n"]} seeds)'


def main():
    rows = collect(sys.argv[1:] or ['work_dirs'])
    base = {seed: v for v, seed, _ in rows.get('baseline', [])}
    print('| model | bbox mAP (mean +- std) | runs | values (seed) | '
          'minus the same seed\'s baseline (mean +- s.e.) |')
    print('| --- | --- | --- | --- | --- |')
    for name, vals in rows.items():
        xs = [v for v, _, _ in vals]
        std = statistics.stdev(xs) if len(xs) > 1 else float('nan')
        diffs = [v - base[s] for v, s, _ in vals if s in base]
        paired = (paired_difference(diffs)
                  if diffs and name.startswith('distilled') else '')
        values = ', '.join(
            f'{v:.4f} ({s})'
            for v, s, _ in sorted(vals, key=lambda r: (r[1] is None, r[1])))
        print(f'| {name} | {statistics.mean(xs):.4f} +- {std:.4f} | '
              f'{len(xs)} | {values} | {paired} |')


if __name__ == '__main__':
    main()
