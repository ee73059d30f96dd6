"""The last check of a loaded checkpoint: only the types the rules make.

The unpickler and its rules build nothing else; this walk makes sure
nothing unfinished (a placeholder, an allow-listed global used as a value,
a bare storage) or unexpected reaches the caller, and bounds the nesting
(deep copies recurse).
"""
import types
from collections import OrderedDict
from typing import Any, List, Tuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from torch import nn

from .errors import Refused
from .rules import check_history_state, describe, statistics_functions

__all__ = ['check_checkpoint_tree', 'MAX_DEPTH']

#: How deep containers may nest (mmengine checkpoints: under 10).
MAX_DEPTH = 100
_ATOMS = (type(None), bool, int, float, str, bytes, torch.Size, torch.dtype,
          torch.device)


def check_checkpoint_tree(obj: Any) -> None:
    """Refuse anything in a loaded checkpoint that a checkpoint of
    tensors, containers, numpy numbers and mmengine's logs does not hold.

    Raises:
        Refused: With the path of the refused object.
    """
    functions = set(statistics_functions().values())
    seen = set()
    stack: List[Tuple[Any, str, int]] = [(obj, 'checkpoint', 0)]
    while stack:
        item, where, depth = stack.pop()
        kind = type(item)
        if kind in _ATOMS or id(item) in seen:
            continue
        seen.add(id(item))
        if depth > MAX_DEPTH:
            raise Refused(f'{where} nests deeper than {MAX_DEPTH} levels')
        children: List[Tuple[Any, str]] = []
        if kind in (dict, OrderedDict):
            attrs = vars(item) if kind is OrderedDict else {}
            if set(attrs) - {'_metadata'}:
                raise Refused(f'{where} is a dict with attributes '
                              f'{sorted(attrs)}')
            children += [(v, f'{where}._metadata') for v in attrs.values()]
            for key, value in item.items():
                children += [(key, f'{where} (a key)'),
                             (value, f'{where}[{key!r:.40}]')]
        elif kind in (list, tuple):
            children += [(v, f'{where}[{i}]') for i, v in enumerate(item)]
        elif kind in (torch.Tensor, nn.Parameter):
            if vars(item):
                raise Refused(f'{where} is a tensor with attributes '
                              f'{sorted(vars(item))}')
        elif kind is np.ndarray or isinstance(item, (np.generic, np.dtype)):
            dtype = item if isinstance(item, np.dtype) else item.dtype
            if dtype.kind not in 'biuf' or dtype.fields is not None:
                raise Refused(f'{where} is a numpy value of dtype {dtype}')
        elif kind is HistoryBuffer:
            state = dict(vars(item))
            state.pop('_statistics_methods', None)
            check_history_state(state)
            children += [(v, f'{where}.{k}') for k, v in state.items()]
        elif kind is types.FunctionType and item in functions:
            continue
        else:
            raise Refused(f'{where} is {describe(item)}, which a checkpoint '
                          'may not hold')
        stack.extend((child, path, depth + 1) for child, path in children)
