"""A clear error for an empty train set, before training starts.

mmengine reports a train set that loads no image deep inside the dataset
("need at least one array to concatenate", from serialising an empty
list) or not at all. :func:`check_train_set` builds the train loop (as
``Runner.train`` would first do) and, when the set is empty, says which
dataset, how many images it had before filtering, and what to check.
"""
import copy
from typing import Any, Optional

from mmengine.registry import DATASETS

__all__ = ['EmptyTrainSetError', 'check_train_set']


class EmptyTrainSetError(ValueError):
    """The train set has no sample."""


def _where(cfg: Any) -> str:
    keys = ('type', 'data_root', 'ann_file', 'data_prefix')
    return ', '.join(f'{k}={cfg[k]!r}' for k in keys if k in cfg)


def explain_empty(dataset_cfg: Any) -> Optional[str]:
    """Why the dataset of ``dataset_cfg`` is empty, or None when it is not
    (or cannot be built without serialising it)."""
    cfg = copy.deepcopy(dataset_cfg)
    try:
        cfg['serialize_data'] = False
        if len(DATASETS.build(cfg)) > 0:
            return None
        unfiltered = copy.deepcopy(cfg)
        unfiltered['filter_cfg'] = None
        total = len(DATASETS.build(unfiltered))
    except Exception:  # a wrapper dataset, or another error
        return None
    where = f'train_dataloader.dataset ({_where(dataset_cfg)})'
    if total == 0:
        return (f'The train set is empty: {where} loads no image. Check '
                'ann_file, data_root and data_prefix.')
    classes = (cfg.get('metainfo') or {}).get('classes')
    return (f'The train set is empty: {where} loads {total} images and '
            f'filtering (filter_cfg={dataset_cfg.get("filter_cfg")}) '
            'leaves none. Images without a box of the dataset\'s classes '
            'are dropped: check that the annotations\' category ids are '
            'those of the file\'s categories and that metainfo.classes '
            f'(here {classes}) names them.')


def check_train_set(runner: Any) -> None:
    """Build ``runner``'s train loop now; raise
    :class:`EmptyTrainSetError` if its train set is empty.

    ``Runner.train`` reuses the loop built here.
    """
    dataset_cfg = runner.cfg.get('train_dataloader', {}).get('dataset')
    try:
        loop = runner.train_loop
    except Exception as err:
        reason = explain_empty(dataset_cfg) if dataset_cfg else None
        if reason is None:
            raise
        raise EmptyTrainSetError(reason) from err
    dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
    if dataset is not None and len(dataset) == 0:
        raise EmptyTrainSetError(
            explain_empty(dataset_cfg) or 'The train set is empty: '
            f'train_dataloader.dataset ({_where(dataset_cfg)}) has no '
            'sample.')
