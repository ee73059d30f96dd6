"""K folds of a COCO-format dataset, for cross-validated comparisons.

:func:`make_folds` splits the images of one annotation file into ``k``
folds, by image or by image group: with ``group_regex`` every image whose
file name gives the same match (the first group, or the whole match) is
in the same fold, so that the tiles of one scene are never split between
train and val. Groups are dealt to the folds largest first, each to the
fold with the fewest images so far (ties: the lower fold), after a shuffle
of fixed seed: deterministic, and balanced in images. Each fold gets
``<out>/<fold>/train.json`` (every other fold's images) and ``val.json``
(its own), with the file names, categories and annotations of the source,
so a config needs only its ``ann_file`` changed (:func:`fold_options`).

    python tools/make_folds.py data/my/annotations.json --k 5 \
        --group-regex '^(scene_\\d+)_' --out data/my/folds
"""
import json
import os
import os.path as osp
import random
import re
from typing import Dict, List, Optional

__all__ = ['make_folds', 'fold_options']


def _group(file_name: str, pattern: Optional[re.Pattern]) -> str:
    if pattern is None:
        return file_name
    found = pattern.search(file_name)
    if found is None:
        raise ValueError(f'--group-regex {pattern.pattern!r} does not '
                         f'match the file name {file_name!r}')
    return found.group(1) if found.groups() else found.group(0)


def make_folds(ann_file: str, out_dir: str, k: int,
               group_regex: Optional[str] = None, seed: int = 0) -> dict:
    """Write ``k`` folds of ``ann_file`` (see the module docstring).

    Returns:
        dict: What ``<out_dir>/folds.json`` holds: per fold its groups and
        the images and boxes of its train and val files.
    """
    if k < 2:
        raise ValueError(f'k must be at least 2, got {k}')
    with open(ann_file) as f:
        coco = json.load(f)
    pattern = re.compile(group_regex) if group_regex else None
    groups: Dict[str, List[dict]] = {}
    for image in sorted(coco['images'], key=lambda i: i['file_name']):
        groups.setdefault(_group(image['file_name'], pattern),
                          []).append(image)
    if len(groups) < k:
        raise ValueError(f'{len(groups)} groups cannot make {k} folds')
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    names.sort(key=lambda g: -len(groups[g]))  # stable: shuffled ties
    members: List[List[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for name in names:
        fold = min(range(k), key=lambda i: (sizes[i], i))
        members[fold].append(name)
        sizes[fold] += len(groups[name])
    by_image: Dict[int, List[dict]] = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    summary = dict(source=osp.abspath(ann_file), k=k,
                   group_regex=group_regex, seed=seed, folds={})
    for fold in range(k):
        val_groups = set(members[fold])
        record = dict(groups=sorted(val_groups))
        for split in ('train', 'val'):
            images = [i for g in sorted(groups) for i in groups[g]
                      if (g in val_groups) == (split == 'val')]
            anns = [a for i in images for a in by_image.get(i['id'], [])]
            path = osp.join(out_dir, str(fold), f'{split}.json')
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                json.dump(dict(coco, images=images, annotations=anns), f)
            record[split] = dict(images=len(images), boxes=len(anns),
                                 ann_file=osp.abspath(path))
        summary['folds'][str(fold)] = record
    with open(osp.join(out_dir, 'folds.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


def fold_options(train_ann: str, val_ann: str,
                 img_prefix: Optional[str] = None) -> dict:
    """Config overrides (``--cfg-options``) that train on ``train_ann``
    and validate and test on ``val_ann``; ``img_prefix`` replaces the
    datasets' ``data_prefix.img`` where the files' names need it.

    They set ``train_dataloader.dataset`` etc.: a config that wraps its
    dataset (``RepeatDataset``, ...) needs its own overrides.
    """
    out = {
        'train_dataloader.dataset.ann_file': train_ann,
        'val_dataloader.dataset.ann_file': val_ann,
        'test_dataloader.dataset.ann_file': val_ann,
        'val_evaluator.ann_file': val_ann,
        'test_evaluator.ann_file': val_ann,
    }
    if img_prefix is not None:
        for loader in ('train', 'val', 'test'):
            out[f'{loader}_dataloader.dataset.data_prefix.img'] = img_prefix
    return out
