"""Safe (``weights_only``) loading of mmengine checkpoints.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
0.10.7 calls ``torch.load`` without the argument. An mmengine checkpoint
holds, next to tensors, a ``message_hub`` of ``HistoryBuffer`` objects with
numpy arrays and the buffer's statistics functions (pickled as
``getattr(HistoryBuffer, 'min')``), which the weights-only unpickler
refuses. Instead of turning the safety off (``weights_only=False``,
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), :func:`safe_load` loads with
``weights_only=True`` and allow-lists exactly the types our checkpoints
contain (:data:`SAFE_GLOBALS`), only for the duration of that load
(``torch.serialization.safe_globals``). Any other global, for example a
pickle that would run code, is still refused.

:func:`register_checkpoint_loader` installs :func:`safe_load` as mmengine's
loader for local files (``CheckpointLoader.register_scheme``, mmengine's
extension point), so that ``load_from``, ``--resume`` and teacher
checkpoints all go through it. It is called on ``import fgd_mmrazor``.

On torch < 2.4 (the reference stack, torch 1.13) there is no allow-list
API and the weights-only unpickler's list is fixed. There :func:`safe_load`
unpickles with :class:`_RestrictedUnpickler` instead, which admits the same
globals (torch's tensor rebuild functions and storages, ``OrderedDict``,
``torch.Size``/dtypes and :data:`SAFE_GLOBALS`) and refuses every other one;
``getattr`` is replaced by a version that only reads public attributes of
the allow-listed classes.
"""
import _compat_pickle
import os.path as osp
import pickle
import types
from typing import Iterable, List, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        _load_checkpoint_to_model)
from torch import nn

__all__ = [
    'SAFE_GLOBALS', 'register_checkpoint_loader', 'safe_load',
    'load_teacher_checkpoint', 'UnsafeCheckpointError'
]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds objects that weights-only loading refuses."""


def _numpy_globals() -> List:
    items: List = [np.ndarray, np.dtype]
    try:  # numpy >= 1.25 keeps _reconstruct in numpy.core.multiarray
        from numpy.core.multiarray import _reconstruct
        items.append(_reconstruct)
    except ImportError:  # pragma: no cover - numpy 2 layout
        from numpy._core.multiarray import _reconstruct
        items.append(_reconstruct)
    # Scalar reconstruction and the concrete dtype classes of numpy >= 1.25.
    try:
        from numpy.core.multiarray import scalar
        items.append(scalar)
    except ImportError:  # pragma: no cover
        pass
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Int64DType',
                     'Int32DType', 'BoolDType', 'UInt8DType'):
            if hasattr(dtypes, name):
                items.append(getattr(dtypes, name))
    return items


def _mmengine_globals() -> List:
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer]


# ``getattr`` rebuilds HistoryBuffer's statistics functions; the unpickler
# still refuses to *call* anything that is not allow-listed.
SAFE_GLOBALS: Tuple = tuple(_numpy_globals() + _mmengine_globals() +
                            [getattr])

HAS_ALLOW_LIST = hasattr(torch.serialization, 'safe_globals')

_original_local_loader = None


# What torch's own weights-only unpickler admits besides tensors: plain
# containers, torch.Size/device, and ``_codecs.encode`` (protocol-2 bytes,
# e.g. inside numpy arrays).
_PLAIN_GLOBALS = (('collections', 'OrderedDict'), ('builtins', 'set'),
                  ('builtins', 'frozenset'), ('_codecs', 'encode'),
                  ('torch', 'Size'), ('torch', 'device'),
                  ('torch._tensor', '_rebuild_from_type_v2'))


def _qualified(obj) -> Tuple[str, str]:
    return obj.__module__, obj.__qualname__


class _RestrictedUnpickler(pickle.Unpickler):
    """An allow-list unpickler for torch < 2.4 (see the module docstring).

    ``torch.load(pickle_module=...)`` subclasses it and resolves storage
    classes itself; every other global comes through :meth:`find_class`.
    """

    def find_class(self, module: str, name: str):
        # Python 2 names of protocol-2 pickles (e.g. __builtin__.getattr).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == 'builtins' and name == 'getattr':
            return _restricted_getattr
        if module == 'torch._utils' and name.startswith('_rebuild_'):
            return super().find_class(module, name)
        if (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        if module == 'torch' and isinstance(getattr(torch, name, None),
                                            torch.dtype):
            return getattr(torch, name)
        for item in SAFE_GLOBALS:
            if item is not getattr and (module, name) in (
                    _qualified(item), (getattr(item, '__module__', ''),
                                       getattr(item, '__name__', ''))):
                return item
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL {module}.{name} is not allow-listed')


def _restricted_getattr(obj, name: str):
    if not isinstance(obj, type) or obj not in SAFE_GLOBALS or \
            name.startswith('_'):
        raise pickle.UnpicklingError(
            f'Unsupported getattr({obj!r}, {name!r}) in a checkpoint')
    return getattr(obj, name)


def _restricted_torch_load(path: str, map_location):
    """``torch.load`` through :class:`_RestrictedUnpickler` (torch < 2.4).

    ``torch.load(pickle_module=...)`` cannot be used: torch 1.13 replaces
    the given module by ``pickle`` unless ``weights_only=True`` (found by
    this project's tests). torch's own readers are called instead, with the
    restricted module, as ``torch.load`` does for its weights-only loads.
    """
    ser = torch.serialization
    with ser._open_file_like(path, 'rb') as opened:
        if ser._is_zipfile(opened):
            with ser._open_zipfile_reader(opened) as zip_file:
                return ser._load(zip_file, map_location, _restricted_pickle)
        return ser._legacy_load(opened, map_location, _restricted_pickle)


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# ``torch.load(pickle_module=...)`` needs a module-like object; torch's
# legacy (non-zip) format also calls its ``load``.
_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler, load=_restricted_load,
    __name__='fgd_restricted_pickle')


def register_checkpoint_loader() -> bool:
    """Make :func:`safe_load` mmengine's loader for local checkpoint files.

    Idempotent. Returns True once installed.
    """
    global _original_local_loader
    if _original_local_loader is None:
        _original_local_loader = CheckpointLoader._schemes.get('')

        def load_from_local(filename, map_location=None):
            filename = osp.expanduser(filename)
            if not osp.isfile(filename):
                raise FileNotFoundError(f'{filename} can not be found.')
            return safe_load(filename, map_location)

        CheckpointLoader.register_scheme(prefixes='', force=True)(
            load_from_local)
    return True


def _explain(path: str, err: Exception) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refusing to load {path!r}: it holds objects outside the '
        f'allow-list of weights-only loading ({err}). A checkpoint written by '
        'mmengine or torch.save(state_dict) loads; a file that needs other '
        'globals may run code when unpickled. If you trust it, re-save '
        'its state_dict with torch.save(ckpt["state_dict"], path).')


def safe_load(path: str, map_location='cpu') -> dict:
    """``torch.load(path, weights_only=True)`` with the allow-list.

    Local paths are read here; other URIs (http, s3...) go through
    mmengine's ``CheckpointLoader``, which calls ``torch.load`` with the
    default (``weights_only=True`` on torch >= 2.6).

    Raises:
        UnsafeCheckpointError: The file needs globals outside the
            allow-list (for example a pickle that would run code).
    """
    try:
        if '://' in path:
            return CheckpointLoader.load_checkpoint(path, map_location)
        if not HAS_ALLOW_LIST:
            return _restricted_torch_load(path, map_location)
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _explain(path, err) from None
    except (AttributeError, RuntimeError) as err:
        # torch < 2.4 reports unsupported globals as RuntimeError.
        if 'weights_only' in str(err) or 'Unsupported' in str(err):
            raise _explain(path, err) from None
        raise


def _required_prefixes(model: nn.Module) -> Iterable[str]:
    for name in ('backbone', 'neck'):
        if getattr(model, name, None) is not None:
            yield name + '.'


def load_teacher_checkpoint(model: nn.Module, path: str) -> None:
    """Load a teacher checkpoint, loudly.

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
