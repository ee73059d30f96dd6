"""Loading of mmengine checkpoints that cannot run code, on every route.

A checkpoint is a pickle, and unpickling can call any function the file
names. :func:`safe_load` reads checkpoints in three layers:

1. **Unpickler.** torch's weights-only unpickler (torch >= 2.4) or, on
   torch < 2.4 (the reference stack), :class:`_RestrictedUnpickler`. Both
   resolve only tensors, plain containers, numpy arrays and the three
   globals an mmengine checkpoint needs beyond that (:data:`SAFE_GLOBALS`):

   * ``mmengine.logging.history_buffer.HistoryBuffer`` (the message hub's
     logs), resolved to :class:`_CheckedHistoryBuffer`: it can only be
     rebuilt from its state, and its ``__setstate__`` accepts exactly the
     attributes mmengine writes (``_log_history``, ``_count_history``,
     ``max_length``, ``statistics_methods``) with their types, nothing
     else (no instance-level ``__reduce_ex__`` or ``__deepcopy__``);
   * ``builtins.getattr``, which pickle uses for the buffer's statistics
     functions (``getattr(HistoryBuffer, 'min')``), resolved to
     :func:`_restricted_getattr`: it returns only a public statistics
     function defined on ``HistoryBuffer`` itself, so no chain reaches a
     module (``getattr(getattr, '__self__')`` is ``builtins``), a private or
     dunder attribute, or another callable. The returned functions are
     values: neither unpickler lets a checkpoint call them.

2. **Result check.** :func:`check_checkpoint_tree` walks what was loaded
   and accepts only the types above, with no instance attribute planted on
   a tensor or a dict (``OrderedDict._metadata`` of a ``state_dict`` is
   the one allowed), before the object is returned to any caller.

3. **Every route.** :func:`register_checkpoint_loader` installs safe
   loaders for every scheme of mmengine's ``CheckpointLoader`` (local
   files, ``http(s)://``, ``torchvision://``, ``open-mmlab://``,
   ``mmcls://``, ``s3://``/``petrel://``, ``pavi://``): ``load_from``,
   ``--resume``, ``teacher_ckpt``, ``init_cfg`` checkpoints,
   ``tools/test.py``, ``tools/export_student.py`` and the analysis tools
   all read through it. A URL is downloaded to torch's hub cache
   (``<torch.hub.get_dir()>/checkpoints``, like mmengine) and then read like
   a local file. It is installed on ``import fgd_mmrazor``.

Nothing here turns the safety off: no ``weights_only=False``, no
environment override, and the allow-list is in force only during one load
(``torch.serialization.safe_globals``). A refused file raises
:class:`UnsafeCheckpointError`, which names the file and the global or
object that was refused.
"""
import _compat_pickle
import importlib
import io
import os
import os.path as osp
import pickle
import re
import types
import warnings
from collections import OrderedDict
from tempfile import TemporaryDirectory
from typing import Any, Callable, Dict, Iterable, List, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import MMLogger
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mme_ckpt
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        _load_checkpoint_to_model)
from torch import nn

__all__ = [
    'SAFE_GLOBALS', 'register_checkpoint_loader', 'safe_load',
    'load_teacher_checkpoint', 'UnsafeCheckpointError',
    'check_checkpoint_tree', 'cached_download'
]

HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds objects that safe loading refuses."""


# ---------------------------------------------------------------------------
# The allow-listed globals
# ---------------------------------------------------------------------------
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _statistics_functions() -> Dict[str, Callable]:
    """The functions a HistoryBuffer pickle may name: public statistics
    methods defined on the class (mmengine's four, and any registered with
    ``HistoryBuffer.register_statistics`` by code, not by a checkpoint)."""
    names = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    out = {}
    for name in names:
        func = vars(HistoryBuffer).get(name)
        if not name.startswith('_') and isinstance(func, types.FunctionType):
            out[name] = func
    return out


def _restricted_getattr(obj: Any, name: Any) -> Callable:
    """``getattr`` for checkpoints: a statistics function of HistoryBuffer,
    or an error."""
    functions = _statistics_functions()
    if not (obj is HistoryBuffer or obj is _CheckedHistoryBuffer) or \
            type(name) is not str or name not in functions:
        raise pickle.UnpicklingError(
            f'getattr({_short(obj)}, {name!r}) is not allow-listed (only '
            f'HistoryBuffer.{{{", ".join(sorted(functions))}}})')
    return functions[name]


def _is_numeric_array(value: Any) -> bool:
    return type(value) is np.ndarray and not value.dtype.hasobject


def _check_history_state(state: Any) -> None:
    """The state mmengine's ``HistoryBuffer.__getstate__`` writes, and
    nothing else."""
    if type(state) is not dict:
        raise pickle.UnpicklingError(
            f'HistoryBuffer state must be a dict, got {_short(state)}')
    allowed = {'_log_history', '_count_history', 'max_length',
               'statistics_methods'}
    extra = sorted(map(repr, set(state) - allowed))
    if extra:
        raise pickle.UnpicklingError(
            f'HistoryBuffer state sets {", ".join(extra)}, which '
            'HistoryBuffer does not have')
    for key in ('_log_history', '_count_history'):
        if key in state and not _is_numeric_array(state[key]):
            raise pickle.UnpicklingError(
                f'HistoryBuffer.{key} must be a numeric array, got '
                f'{_short(state[key])}')
    if 'max_length' in state and type(state['max_length']) is not int:
        raise pickle.UnpicklingError(
            'HistoryBuffer.max_length must be an int, got '
            f'{_short(state["max_length"])}')
    methods = state.get('statistics_methods', {})
    functions = _statistics_functions()
    if type(methods) is not dict or any(
            functions.get(k) is not v for k, v in methods.items()):
        raise pickle.UnpicklingError(
            'HistoryBuffer.statistics_methods must map names to '
            'HistoryBuffer\'s own statistics functions')


class _CheckedHistoryBuffer(HistoryBuffer):
    """What a checkpoint's ``HistoryBuffer`` global resolves to.

    Unpickling creates it with ``__new__`` and restores its state; the
    state is checked first, then the object becomes a plain
    ``HistoryBuffer``. Calling the class (a ``REDUCE``) is refused.
    """

    def __init__(self, *args, **kwargs) -> None:
        raise pickle.UnpicklingError(
            'a checkpoint called HistoryBuffer(...); only its state may be '
            'restored')

    def __setstate__(self, state: Any) -> None:
        _check_history_state(state)
        self.__class__ = HistoryBuffer
        HistoryBuffer.__setstate__(self, dict(state))


def _numpy_globals() -> List[Tuple[Any, str]]:
    """numpy's array, scalar and dtype rebuild functions, by pickle name.

    numpy 2 pickles its rebuild functions as ``numpy._core.multiarray.*``,
    numpy 1 as ``numpy.core.multiarray.*``; numpy >= 1.26 has both modules
    (the same functions), so files written under either load under
    either.
    """
    items = [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    for core in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            with warnings.catch_warnings():  # numpy 2: numpy.core warns
                warnings.simplefilter('ignore')
                multiarray = importlib.import_module(core)
        except ImportError:  # pragma: no cover - numpy < 1.26
            continue
        items += [(multiarray._reconstruct, f'{core}._reconstruct'),
                  (multiarray.scalar, f'{core}.scalar')]
    dtypes = getattr(np, 'dtypes', None)
    for name in ('Float64DType', 'Float32DType', 'Float16DType', 'Int64DType',
                 'Int32DType', 'Int16DType', 'Int8DType', 'UInt8DType',
                 'BoolDType'):
        if dtypes is not None and hasattr(dtypes, name):
            items.append((getattr(dtypes, name), f'numpy.dtypes.{name}'))
    return items


#: ``(object, pickle name)`` of every global allowed beyond torch's own.
SAFE_GLOBALS: Tuple[Tuple[Any, str], ...] = tuple(_numpy_globals() + [
    (_CheckedHistoryBuffer, HISTORY_BUFFER),
    (_restricted_getattr, 'builtins.getattr'),
])

HAS_ALLOW_LIST = hasattr(torch.serialization, 'safe_globals')

# What torch's own weights-only unpickler admits besides tensors: plain
# containers, torch.Size/device, and ``_codecs.encode`` (protocol-2 bytes,
# e.g. inside numpy arrays).
_PLAIN_GLOBALS = (('collections', 'OrderedDict'), ('builtins', 'set'),
                  ('builtins', 'frozenset'), ('builtins', 'bytearray'),
                  ('_codecs', 'encode'), ('torch', 'Size'),
                  ('torch', 'device'), ('torch._tensor',
                                        '_rebuild_from_type_v2'))
_SAFE_BY_NAME = {name: obj for obj, name in SAFE_GLOBALS}


class _RestrictedUnpickler(pickle.Unpickler):
    """The allow-list unpickler of torch < 2.4 (see the module docstring).

    ``torch.load`` subclasses it and resolves storage classes itself; every
    other global comes through :meth:`find_class`.
    """

    def find_class(self, module: str, name: str):
        # Python 2 names of protocol-2 pickles (e.g. __builtin__.getattr).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f'{module}.{name}'
        if full in _SAFE_BY_NAME:
            return _SAFE_BY_NAME[full]
        if module == 'torch._utils' and name.startswith('_rebuild_') and \
                name != '_rebuild_from_type_v2':
            return super().find_class(module, name)
        if (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        if module == 'torch' and (isinstance(
                getattr(torch, name, None), torch.dtype) or
                                  name.endswith('Storage')):
            return getattr(torch, name)
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL {full} is not allow-listed')


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# ``torch.load(pickle_module=...)`` needs a module-like object; torch's
# legacy (non-zip) format also calls its ``load``.
_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler, load=_restricted_load,
    __name__='fgd_restricted_pickle')


def _restricted_torch_load(file, map_location):
    """``torch.load`` through :class:`_RestrictedUnpickler` (torch < 2.4).

    ``torch.load(pickle_module=...)`` cannot be used: torch 1.13 replaces
    the given module by ``pickle`` unless ``weights_only=True`` (found by
    this project's tests). torch's own readers are called instead, with the
    restricted module, as ``torch.load`` does for its weights-only loads.
    """
    ser = torch.serialization
    with ser._open_file_like(file, 'rb') as opened:
        if ser._is_zipfile(opened):
            with ser._open_zipfile_reader(opened) as zip_file:
                return ser._load(zip_file, map_location, _restricted_pickle)
        return ser._legacy_load(opened, map_location, _restricted_pickle)


# ---------------------------------------------------------------------------
# The result check
# ---------------------------------------------------------------------------
_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray,
          torch.Size, torch.dtype, torch.device, torch.layout,
          torch.memory_format)


def _short(obj: Any) -> str:
    text = repr(obj) if isinstance(obj, (type, str, int)) else \
        f'a {type(obj).__module__}.{type(obj).__qualname__}'
    return text if len(text) < 80 else text[:77] + '...'


def check_checkpoint_tree(obj: Any) -> None:
    """Refuse anything in a loaded checkpoint that a checkpoint of tensors,
    containers, numpy arrays and mmengine's logs does not hold.

    Raises:
        pickle.UnpicklingError: With the path of the refused object.
    """
    functions = set(_statistics_functions().values())
    seen = set()
    stack: List[Tuple[Any, str]] = [(obj, 'checkpoint')]
    while stack:
        item, where = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        kind = type(item)
        if kind in _ATOMS:
            continue
        if kind in (dict, OrderedDict):
            attrs = vars(item) if kind is OrderedDict else {}
            if set(attrs) - {'_metadata'}:
                raise pickle.UnpicklingError(
                    f'{where} is a dict with attributes '
                    f'{sorted(attrs)}')
            stack.extend((v, f'{where}._metadata') for v in attrs.values())
            for key, value in item.items():
                stack.append((key, f'{where} (a key)'))
                stack.append((value, f'{where}[{key!r}]'))
        elif kind in (list, tuple, set, frozenset):
            stack.extend((v, f'{where}[{i}]') for i, v in enumerate(item))
        elif kind in (torch.Tensor, nn.Parameter):
            if vars(item):
                raise pickle.UnpicklingError(
                    f'{where} is a tensor with attributes '
                    f'{sorted(vars(item))}')
        elif kind is np.ndarray or isinstance(item, (np.generic, np.dtype)):
            dtype = item if isinstance(item, np.dtype) else item.dtype
            if dtype.hasobject:
                raise pickle.UnpicklingError(
                    f'{where} is a numpy object of Python objects')
        elif kind is HistoryBuffer:
            state = dict(vars(item))
            _check_history_state(state)
            stack.extend((v, f'{where}.{k}') for k, v in state.items())
        elif kind is types.FunctionType and item in functions:
            continue
        else:
            raise pickle.UnpicklingError(
                f'{where} is {_short(item)}, which a checkpoint may not '
                'hold')


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------
def _reason(err: Exception) -> str:
    """The refused global or object, from an unpickler's message."""
    text = str(err)
    found = re.search(r'GLOBAL (\S+)', text)
    if found:
        name = found.group(1)
        # torch's message drops the module of builtins (``exec``).
        name = name if '.' in name else f'builtins.{name}'
        return f'it needs the global {name}, which is not allow-listed'
    found = re.search(r'WeightsUnpickler error: ([^\n]+)', text)
    if found:
        text = found.group(1)
    return text.strip().splitlines()[0][:300] if text.strip() else repr(err)


def _explain(name: str, err: Exception) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refusing to load checkpoint {name!r}: {_reason(err)}. Checkpoints '
        'written by mmengine or torch.save(state_dict) load; a file that '
        'needs other objects may run code when unpickled. If you trust it, '
        'load it yourself and re-save its state_dict with '
        'torch.save(ckpt["state_dict"], path).')


def _is_uri(path: Any) -> bool:
    return isinstance(path, str) and re.match(r'^(\S+:)?\S+://', path) is \
        not None


def safe_load(path: Union[str, os.PathLike, io.IOBase],
              map_location='cpu') -> Any:
    """Load a checkpoint file, a URI or a stream without running code.

    Args:
        path (str | PathLike | file-like): A local path, any URI mmengine's
            ``CheckpointLoader`` knows (``https://``, ``torchvision://``,
            ``s3://`` ...; read through the safe loaders of
            :func:`register_checkpoint_loader`), or an open binary stream.
        map_location: As for ``torch.load``. Defaults to 'cpu'.

    Raises:
        UnsafeCheckpointError: The file needs a global or holds an object
            outside the allow-list (for example a pickle that would run
            code).
        FileNotFoundError: A local path does not exist.
    """
    if _is_uri(path):
        register_checkpoint_loader()
        return CheckpointLoader.load_checkpoint(path, map_location)
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else \
        getattr(path, 'name', '<stream>')
    if isinstance(path, (str, os.PathLike)):
        path = osp.expanduser(os.fspath(path))
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} can not be found.')
    try:
        if HAS_ALLOW_LIST:
            with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
                checkpoint = torch.load(
                    path, map_location=map_location, weights_only=True)
        else:
            checkpoint = _restricted_torch_load(path, map_location)
        check_checkpoint_tree(checkpoint)
    except pickle.UnpicklingError as err:
        raise _explain(name, err) from None
    except (AttributeError, RuntimeError, TypeError) as err:
        # torch < 2.4 reports unsupported globals as RuntimeError.
        if 'weights_only' in str(err) or 'Unsupported' in str(err) or \
                'allow-listed' in str(err):
            raise _explain(name, err) from None
        raise
    return checkpoint


def cached_download(url: str, model_dir: str = None,
                    progress: bool = False) -> str:
    """Download ``url`` once into torch's hub cache and return the path.

    The file is ``<model_dir or torch.hub.get_dir()/checkpoints>/<name>``,
    where mmengine's ``load_from_http`` keeps it too. In a distributed run
    local rank 0 downloads and the other ranks wait for it.
    """
    from mmengine.dist import barrier, get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    target = osp.join(model_dir, osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()
    local_rank = int(os.environ.get('LOCAL_RANK', rank))
    if local_rank == 0 and not osp.isfile(target):
        torch.hub.download_url_to_file(url, target, progress=progress)
    if world_size > 1:
        barrier()
    if not osp.isfile(target):
        torch.hub.download_url_to_file(url, target, progress=progress)
    return target


def _load_local(filename, map_location=None):
    return safe_load(filename, map_location)


def _load_http(filename, map_location=None, model_dir=None,
               progress=os.isatty(0)):
    return safe_load(cached_download(filename, model_dir, progress),
                     map_location)


def _load_torchvision(filename, map_location=None):
    name = filename.split('://', 1)[1]
    return _load_http(mme_ckpt.get_torchvision_models()[name], map_location)


def _load_openmmlab(filename, map_location=None):
    name = filename.split('://', 1)[1]
    name = mme_ckpt.get_deprecated_model_names().get(name, name)
    url = mme_ckpt.get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return _load_http(url, map_location)
    return safe_load(osp.join(mme_ckpt._get_mmengine_home(), url),
                     map_location)


def _load_mmcls(filename, map_location=None):
    url = mme_ckpt.get_mmcls_models()[filename[len('mmcls://'):]]
    return mme_ckpt._process_mmcls_checkpoint(_load_http(url, map_location))


def _load_ceph(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    data = get_file_backend(
        filename, backend_args={'backend': backend}).get(filename)
    with io.BytesIO(data) as buffer:
        return safe_load(buffer, map_location)


def _load_pavi(filename, map_location=None):  # pragma: no cover - no pavi
    from pavi import modelcloud
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return safe_load(downloaded, map_location)


#: mmengine's checkpoint schemes and their safe loaders.
SAFE_SCHEMES: Tuple[Tuple[Union[str, Tuple[str, ...]], Callable], ...] = (
    ('', _load_local),
    (('http://', 'https://'), _load_http),
    (('modelzoo://', 'torchvision://'), _load_torchvision),
    (('open-mmlab://', 'openmmlab://'), _load_openmmlab),
    ('mmcls://', _load_mmcls),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), _load_ceph),
    ('pavi://', _load_pavi),
)


def register_checkpoint_loader() -> bool:
    """Make the safe loaders mmengine's loaders for every scheme.

    Idempotent (re-registers if another package replaced one). A scheme
    that another package registered, which has no safe loader here, is
    replaced by one that refuses to load.

    Returns:
        bool: True.
    """
    ours = {loader for _, loader in SAFE_SCHEMES}
    for prefixes, loader in SAFE_SCHEMES:
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True)
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if loader not in ours:
            CheckpointLoader.register_scheme(
                prefixes=prefix, loader=_refuse_scheme, force=True)
    return True


def _refuse_scheme(filename, map_location=None):
    raise UnsafeCheckpointError(
        f'Refusing to load checkpoint {filename!r}: fgd_mmrazor has no safe '
        'loader for its scheme. Download it and pass the local file.')


# ---------------------------------------------------------------------------
# Teacher checkpoints
# ---------------------------------------------------------------------------
def _required_prefixes(model: nn.Module) -> Iterable[str]:
    for name in ('backbone', 'neck'):
        if getattr(model, name, None) is not None:
            yield name + '.'


def load_teacher_checkpoint(model: nn.Module, path: str) -> None:
    """Load a teacher checkpoint (a path or a URL), loudly.

    Missing and unexpected keys are logged; a checkpoint that leaves any
    backbone or neck weight of the teacher unloaded is an error (those are
    the layers the student imitates).

    Raises:
        UnsafeCheckpointError: See :func:`safe_load`.
        RuntimeError: Backbone or neck weights are missing.
    """
    try:
        checkpoint = safe_load(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'teacher_ckpt {path!r} does not exist') from None
    state_dict = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise RuntimeError(f'teacher_ckpt {path!r} holds no state_dict')
    state_dict = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state_dict.items()
    }
    model_state = model.state_dict()
    model_keys = set(model_state)
    # A key whose shape differs is not loaded either.
    missing = sorted(
        k for k in model_keys
        if k not in state_dict or tuple(getattr(state_dict[k], 'shape', (
        ))) != tuple(model_state[k].shape))
    unexpected = sorted(set(state_dict) - model_keys)
    logger = MMLogger.get_current_instance()
    if unexpected:
        logger.warning(f'teacher_ckpt {path}: {len(unexpected)} unexpected '
                       f'keys, e.g. {unexpected[:5]}')
    if missing:
        logger.warning(f'teacher_ckpt {path}: {len(missing)} missing keys, '
                       f'e.g. {missing[:5]}')
    prefixes = tuple(_required_prefixes(model))
    vital = [k for k in missing if k.startswith(prefixes)]
    if vital:
        hint = ''
        if any(k.startswith('architecture.') for k in state_dict):
            hint = (' It looks like a distillation checkpoint: export the '
                    'student first (tools/export_student.py).')
        raise RuntimeError(
            f'teacher_ckpt {path!r} does not fit the teacher model: '
            f'{len(vital)} backbone/neck weights are missing, e.g. '
            f'{vital[:5]}.{hint} Check that model.teacher is the config '
            'the checkpoint was trained with.')
    _load_checkpoint_to_model(model, {'state_dict': state_dict},
                              strict=False)
    logger.info(f'Loaded teacher checkpoint {path}')
