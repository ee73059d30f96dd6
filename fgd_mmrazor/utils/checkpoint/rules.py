"""What a checkpoint may build: the allow-list and its checks.

An mmengine checkpoint needs, beyond Python's numbers, strings and
containers (which :mod:`.unpickler` makes itself):

========================================  ================================
global                                    allowed as
========================================  ================================
``torch._utils._rebuild_tensor_v2``       a view of a storage of this
                                          file that fits in it and does
                                          not overlap itself
``torch._utils._rebuild_parameter``       a Parameter of such a tensor
``torch._utils._rebuild_meta_tensor_``    a meta tensor (no data)
``no_storage``
``torch.<X>Storage``, ``UntypedStorage``  the type of a storage record
``torch.Size``, ``torch.device``,         values made from ints and
torch dtypes                              strings
``collections.OrderedDict``               empty, then items; only
                                          ``_metadata`` as attribute
``_codecs.encode``                        ``(str, 'latin1')``: bytes
``numpy.core.multiarray._reconstruct``    ``(numpy.ndarray, (0,), b'b')``
(and ``numpy._core``)                     then a state of exactly
                                          shape x itemsize bytes of a
                                          numeric dtype made here
``numpy.core.multiarray.scalar``          a numeric dtype made here and
                                          itemsize bytes
``numpy.dtype``                           ``('f8', False, True)`` and the
                                          state numpy writes for it
``mmengine...HistoryBuffer``              made empty (``NEWOBJ``), then
                                          the state mmengine writes
``builtins.getattr``                      ``(HistoryBuffer, 'min')``: one
                                          of its statistics functions
========================================  ================================

No other global resolves, and none is imported: the table is built when
this module is imported, from modules already loaded. A ``BUILD`` applies
only to the numpy placeholders, ``HistoryBuffer`` objects and
``OrderedDict`` objects made by the same load, never to a class, a
function or a module.

**Budget.** The tensors (each distinct view) and numpy arrays and scalars
a load makes may hold at most the file's size plus :data:`SLACK` bytes;
the storages of torch's legacy format at most the file's size. A file
cannot make more data than it holds (zero strides, overlapping views,
``bytearray(n)``, ``Counter`` over a huge array), and what it makes can
be deep-copied (``--resume`` copies the message hub) at the same bound.
"""
import math
import re
import types
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from .errors import Refused
from .unpickler import CheckpointUnpickler, Pending

__all__ = ['Rules', 'ALLOWED_GLOBALS', 'SLACK', 'statistics_functions']

#: Bytes a load may make beyond the size of its file.
SLACK = 1 << 20
HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
MAX_DIMS = 32
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')
_HISTORY_KEYS = {'_log_history', '_count_history', 'max_length',
                 'statistics_methods'}


def statistics_functions() -> Dict[str, Callable]:
    """The functions a HistoryBuffer pickle may name: public statistics
    methods defined on the class (mmengine's four, and any registered by
    code with ``HistoryBuffer.register_statistics``)."""
    names = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    out = {}
    for name in names:
        func = vars(HistoryBuffer).get(name)
        if not name.startswith('_') and isinstance(func, types.FunctionType):
            out[name] = func
    return out


def describe(obj: Any) -> str:
    """A short, safe description of ``obj`` for messages."""
    if isinstance(obj, Global):
        return f'the global {obj.name}'
    if isinstance(obj, type):
        return f'the class {obj.__module__}.{obj.__qualname__}'
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        return f'the function {obj.__module__}.{obj.__qualname__}'
    kind = type(obj)
    return f'a {kind.__module__}.{kind.__qualname__}'


class Global:
    """An allow-listed global: what ``GLOBAL`` pushes for a callable.

    ``call`` and ``new`` are names of :class:`Rules` methods that take the
    argument tuple of a ``REDUCE`` or ``NEWOBJ``.
    """

    def __init__(self, name: str, call: Optional[str] = None,
                 new: Optional[str] = None) -> None:
        self.name, self.call, self.new = name, call, new

    def __repr__(self) -> str:
        return f'<allow-listed global {self.name}>'


class _PendingArray(Pending):
    __slots__ = ()


class _PendingDtype(Pending):
    __slots__ = ('code', )

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code


def _numpy_modules():
    """numpy 2 names its rebuild functions ``numpy._core.multiarray``,
    numpy 1 ``numpy.core.multiarray``: both mean the same rules."""
    return ('numpy._core.multiarray', 'numpy.core.multiarray')


def _table() -> Dict[str, Any]:
    table: Dict[str, Any] = {
        'torch._utils._rebuild_tensor_v2': Global(
            'torch._utils._rebuild_tensor_v2', call='tensor'),
        'torch._utils._rebuild_parameter': Global(
            'torch._utils._rebuild_parameter', call='parameter'),
        'torch._utils._rebuild_meta_tensor_no_storage': Global(
            'torch._utils._rebuild_meta_tensor_no_storage',
            call='meta_tensor'),
        'torch.Size': Global('torch.Size', call='size'),
        'torch.device': Global('torch.device', call='device'),
        'torch.UntypedStorage': torch.UntypedStorage,
        'collections.OrderedDict': Global('collections.OrderedDict',
                                          call='ordered_dict'),
        '_codecs.encode': Global('_codecs.encode', call='encode'),
        'builtins.getattr': Global('builtins.getattr', call='getattr'),
        'numpy.ndarray': Global('numpy.ndarray'),
        'numpy.dtype': Global('numpy.dtype', call='dtype'),
        HISTORY_BUFFER: Global(HISTORY_BUFFER, new='history_buffer'),
    }
    for module in _numpy_modules():
        table[f'{module}._reconstruct'] = Global(
            f'{module}._reconstruct', call='reconstruct')
        table[f'{module}.scalar'] = Global(f'{module}.scalar', call='scalar')
    for name in ('float16', 'float32', 'float64', 'bfloat16', 'uint8',
                 'int8', 'int16', 'int32', 'int64', 'bool', 'complex64',
                 'complex128', 'half', 'float', 'double', 'long', 'int',
                 'short'):
        dtype = getattr(torch, name, None)
        if isinstance(dtype, torch.dtype):
            table[f'torch.{name}'] = dtype
    for name in ('Float', 'Double', 'Half', 'BFloat16', 'Long', 'Int',
                 'Short', 'Char', 'Byte', 'Bool', 'ComplexFloat',
                 'ComplexDouble'):
        table[f'torch.{name}Storage'] = torch.serialization.StorageType(
            f'{name}Storage')
    # Protocol 4 names the statistics functions directly.
    for name, func in statistics_functions().items():
        table[f'{HISTORY_BUFFER}.{name}'] = func
    return table


_GLOBALS = _table()
#: Names of every global a checkpoint may use.
ALLOWED_GLOBALS: Tuple[str, ...] = tuple(sorted(_GLOBALS))
_NUMPY_CODE = re.compile(r'^[biuf][1248]$')
_LOCATION = re.compile(r'^[a-z]{1,16}(:[0-9]{1,4})?$')


def _ints(value: Any, what: str, minimum: int = 0) -> Tuple[int, ...]:
    if type(value) not in (tuple, list, torch.Size) or \
            len(value) > MAX_DIMS or any(
                type(v) is not int or v < minimum for v in value):
        raise Refused(f'{what} must be at most {MAX_DIMS} ints >= {minimum}')
    return tuple(value)


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise Refused(f'{what} must be an int >= 0, got {describe(value)}')
    return value


def _no_hooks(hooks: Any) -> None:
    if type(hooks) is not OrderedDict or hooks:
        raise Refused('a tensor carries backward hooks')


def _check_view(size: Tuple[int, ...], stride: Tuple[int, ...], offset: int,
                numel: int) -> None:
    """The view lies inside the storage and no two of its elements share
    memory (so it holds no more data than the storage)."""
    if len(size) != len(stride):
        raise Refused('a tensor has as many strides as dims: '
                      f'size {size}, stride {stride}')
    if math.prod(size) == 0:
        return
    reach = 0  # the largest offset the dims seen so far reach
    for step, extent in sorted((st, sz) for sz, st in zip(size, stride)
                               if sz > 1):
        if step <= reach:
            raise Refused(f'a tensor view overlaps itself (size {size}, '
                          f'stride {stride}): it would hold more elements '
                          'than its storage')
        reach += step * (extent - 1)
    if offset + reach >= numel:
        raise Refused(f'a tensor view (offset {offset}, size {size}, '
                      f'stride {stride}) reaches past its storage of '
                      f'{numel} elements')


class Rules:
    """The rules of one load (see the module docstring).

    Args:
        file_size (int): Bytes of the file; the budget is this plus
            :data:`SLACK`.
        records (dict, optional): ``{name: size}`` of a zip archive's
            records (relative to its folder, e.g. ``data/0``). None for
            torch's legacy format.
    """

    def __init__(self, file_size: int,
                 records: Optional[Dict[str, int]] = None) -> None:
        self.limit = file_size + SLACK
        self.spent = 0
        self.records = records
        self.legacy_limit, self.legacy_spent = file_size, 0
        self.storages: Dict[int, Tuple[Any, int]] = {}
        self.views: set = set()
        self.legacy_roots: set = set()
        self.encoded: Dict[int, Tuple[str, bytes]] = {}
        self.unbuilt: Dict[int, Any] = {}

    def pickle_module(self) -> types.SimpleNamespace:
        """A module-like object for torch's loaders, whose unpicklers use
        these rules."""
        unpickler = type('Unpickler', (CheckpointUnpickler, ),
                         {'rules': self})

        def load(file, **kwargs):
            return unpickler(file, **kwargs).load()

        return types.SimpleNamespace(Unpickler=unpickler, load=load,
                                     __name__='fgd_checkpoint_pickle')

    def charge(self, nbytes: int, what: str) -> None:
        self.spent += nbytes
        if self.spent > self.limit:
            raise Refused(
                f'{what} takes the data this file makes to {self.spent} '
                f'bytes, over its budget of {self.limit} (file size + '
                f'{SLACK}): a checkpoint cannot make more data than it '
                'holds')

    # -- the opcodes the unpickler hands over ----------------------------
    def find_global(self, module: str, name: str) -> Any:
        full = f'{module}.{name}'
        if full not in _GLOBALS:
            raise Refused(f'it needs the global {full}, which is not '
                          'allow-listed')
        return _GLOBALS[full]

    def call(self, func: Any, args: tuple) -> Any:
        if not isinstance(func, Global) or func.call is None:
            raise Refused(f'it calls {describe(func)}, which a checkpoint '
                          'may not call')
        return getattr(self, '_call_' + func.call)(args)

    def new(self, cls: Any, args: tuple) -> Any:
        if not isinstance(cls, Global) or cls.new is None:
            raise Refused(f'it instantiates {describe(cls)}, which a '
                          'checkpoint may not instantiate')
        return getattr(self, '_new_' + cls.new)(args)

    def build(self, inst: Any, state: Any) -> Any:
        if type(inst) is OrderedDict:
            return self._build_ordered_dict(inst, state)
        if type(inst) is HistoryBuffer and id(inst) in self.unbuilt:
            del self.unbuilt[id(inst)]
            check_history_state(state)
            HistoryBuffer.__setstate__(inst, dict(state))
            return inst
        if type(inst) is _PendingArray:
            return self._build_array(state)
        if type(inst) is _PendingDtype:
            return self._build_dtype(inst.code, state)
        raise Refused(f'it sets the state of {describe(inst)}; only numpy '
                      'arrays and dtypes, HistoryBuffers and OrderedDicts '
                      'made by the same load may be given one')

    def storage(self, pid: Any, load: Callable) -> Any:
        """Check a storage reference against the archive, then let torch
        read it (``load``: torch's ``persistent_load``)."""
        if type(pid) is not tuple or not pid or \
                pid[0] not in ('storage', b'storage'):
            raise Refused('the pickle refers to external data that is not a '
                          'storage record')
        legacy = self.records is None
        if len(pid) != (6 if legacy else 5):
            raise Refused(f'a storage reference has {len(pid)} fields')
        stype, key, location, numel = pid[1:5]
        if stype is torch.UntypedStorage:
            itemsize = 1
        elif isinstance(stype, torch.serialization.StorageType):
            itemsize = torch._utils._element_size(stype.dtype)
        else:
            raise Refused(f'a storage has the type {describe(stype)}')
        if isinstance(location, bytes):
            location = location.decode('ascii', 'replace')
        if type(location) is not str or not _LOCATION.match(location):
            raise Refused(f'a storage has the location {location!r}')
        if type(key) is not str or not re.match(r'^[0-9A-Za-z_]{1,64}$',
                                                key):
            raise Refused(f'a storage has the key {key!r}')
        numel = _int(numel, 'a storage size')
        nbytes = numel * itemsize
        if legacy:
            numel = self._legacy_storage(key, pid[5], numel, nbytes)
        else:
            record = self.records.get(f'data/{key}')
            if record is None:
                raise Refused(f'storage {key!r} has no record data/{key} '
                              'in the archive')
            if record != nbytes:
                raise Refused(f'storage {key!r} claims {nbytes} bytes; its '
                              f'record holds {record}')
        try:
            storage = load(pid)
        except Exception as err:  # e.g. map_location: not the file's fault
            raise LocationError(err) from err
        self.storages[id(storage)] = (storage, numel)
        return storage

    def _legacy_storage(self, key: str, view: Any, numel: int,
                        nbytes: int) -> int:
        if key not in self.legacy_roots:  # read from the file once
            self.legacy_roots.add(key)
            self.legacy_spent += nbytes
            if self.legacy_spent > self.legacy_limit:
                raise Refused('the storages of this legacy-format file '
                              f'claim {self.legacy_spent} bytes, more than '
                              f'the file holds ({self.legacy_limit})')
        if view is None:
            return numel
        if type(view) is not tuple or len(view) != 3 or \
                type(view[0]) is not str:
            raise Refused('a storage view is malformed')
        offset, size = _int(view[1], 'a view offset'), _int(
            view[2], 'a view size')
        if offset + size > numel:
            raise Refused(f'a storage view ({offset} + {size}) reaches past '
                          f'its storage of {numel} elements')
        return size

    # -- REDUCE of the allow-listed functions ----------------------------
    def _storage_of(self, storage: Any) -> Tuple[Any, int]:
        found = self.storages.get(id(storage))
        if found is None or found[0] is not storage:
            raise Refused(f'a tensor is made from {describe(storage)}, not '
                          'from a storage record of this file')
        return found

    def _call_tensor(self, args: tuple) -> torch.Tensor:
        if len(args) not in (6, 7) or (len(args) == 7 and args[6]):
            raise Refused('_rebuild_tensor_v2 takes (storage, offset, size, '
                          'stride, requires_grad, hooks) and no metadata')
        storage, numel = self._storage_of(args[0])
        offset = _int(args[1], 'a tensor offset')
        size = _ints(args[2], 'a tensor size')
        stride = _ints(args[3], 'a tensor stride')
        if type(args[4]) is not bool:
            raise Refused('requires_grad must be a bool')
        _no_hooks(args[5])
        _check_view(size, stride, offset, numel)
        view = (id(storage), offset, size, stride)
        if view not in self.views:
            self.views.add(view)
            self.charge(
                math.prod(size) * torch._utils._element_size(storage.dtype),
                f'a tensor of size {size}')
        return torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
                                               args[4], OrderedDict())

    def _call_parameter(self, args: tuple) -> torch.nn.Parameter:
        if len(args) != 3 or type(args[0]) is not torch.Tensor or \
                type(args[1]) is not bool:
            raise Refused('_rebuild_parameter takes (tensor, requires_grad, '
                          'hooks)')
        _no_hooks(args[2])
        return torch.nn.Parameter(args[0], args[1])

    def _call_meta_tensor(self, args: tuple) -> torch.Tensor:
        if len(args) != 4 or not isinstance(args[0], torch.dtype) or \
                type(args[3]) is not bool:
            raise Refused('_rebuild_meta_tensor_no_storage takes (dtype, '
                          'size, stride, requires_grad)')
        size = _ints(args[1], 'a tensor size')
        stride = _ints(args[2], 'a tensor stride')
        return torch.empty_strided(size, stride, dtype=args[0],
                                   device='meta', requires_grad=args[3])

    def _call_size(self, args: tuple) -> torch.Size:
        if len(args) != 1:
            raise Refused('torch.Size takes one tuple')
        return torch.Size(_ints(args[0], 'a torch.Size'))

    def _call_device(self, args: tuple) -> torch.device:
        if not 1 <= len(args) <= 2 or type(args[0]) is not str or \
                not _LOCATION.match(args[0]) or \
                (len(args) == 2 and type(args[1]) is not int):
            raise Refused('torch.device takes a device name and an index')
        return torch.device(*args)

    def _call_ordered_dict(self, args: tuple) -> OrderedDict:
        if args:
            raise Refused('OrderedDict is made empty, then filled')
        return OrderedDict()

    def _build_ordered_dict(self, inst: OrderedDict, state: Any) -> Any:
        if type(state) is not dict or set(state) - {'_metadata'} or \
                type(state.get('_metadata', {})) not in (dict, OrderedDict):
            raise Refused('an OrderedDict may only carry a _metadata dict')
        if '_metadata' in state:
            inst._metadata = state['_metadata']
        return inst

    def _call_encode(self, args: tuple) -> bytes:
        if len(args) != 2 or type(args[0]) is not str or \
                args[1] != 'latin1':
            raise Refused("_codecs.encode takes (str, 'latin1')")
        # The same string (a memo reference) encodes to the same bytes:
        # a file cannot make a copy per reference.
        text = args[0]
        if id(text) not in self.encoded:
            try:
                self.encoded[id(text)] = (text, text.encode('latin1'))
            except UnicodeEncodeError:
                raise Refused('_codecs.encode of a non-latin1 str') from None
        return self.encoded[id(text)][1]

    def _call_getattr(self, args: tuple) -> Callable:
        functions = statistics_functions()
        if len(args) != 2 or args[0] is not _GLOBALS[HISTORY_BUFFER] or \
                type(args[1]) is not str or args[1] not in functions:
            what = describe(args[0]) if args else 'nothing'
            raise Refused(
                f'getattr({what}, {args[1:2]!r}) is not allow-listed (only '
                f'HistoryBuffer.{{{", ".join(sorted(functions))}}})')
        return functions[args[1]]

    def _new_history_buffer(self, args: tuple) -> HistoryBuffer:
        if args:
            raise Refused('a HistoryBuffer is made empty, then given its '
                          'state')
        inst = HistoryBuffer.__new__(HistoryBuffer)
        self.unbuilt[id(inst)] = inst
        return inst

    # -- numpy -----------------------------------------------------------
    def _call_dtype(self, args: tuple) -> _PendingDtype:
        if len(args) != 3 or type(args[0]) is not str or \
                not _NUMPY_CODE.match(args[0]) or args[1:] != (False, True):
            raise Refused(f'numpy.dtype{args!r:.60} is not a plain numeric '
                          'dtype')
        return _PendingDtype(args[0])

    def _build_dtype(self, code: str, state: Any) -> np.dtype:
        if type(state) is not tuple or len(state) != 8 or \
                state[0] != 3 or state[1] not in ('<', '>', '|', '=') or \
                state[2:] != (None, None, None, -1, -1, 0):
            raise Refused(f'the state {state!r:.80} of a numpy dtype is not '
                          "the one numpy writes for a plain numeric dtype")
        dtype = np.dtype(code)
        if state[1] in '<>' and dtype.itemsize > 1:
            dtype = dtype.newbyteorder(state[1])
        return dtype

    @staticmethod
    def _numeric_dtype(dtype: Any) -> np.dtype:
        if not isinstance(dtype, np.dtype) or dtype.kind not in 'biuf' or \
                dtype.fields is not None or dtype.subdtype is not None:
            raise Refused(f'a numpy value has the dtype {describe(dtype)}; '
                          'only plain numeric dtypes load')
        return dtype

    def _call_reconstruct(self, args: tuple) -> _PendingArray:
        if len(args) != 3 or args[0] is not _GLOBALS['numpy.ndarray'] or \
                args[1] != (0, ) or args[2] != b'b':
            raise Refused('numpy arrays are rebuilt only as '
                          "_reconstruct(numpy.ndarray, (0,), b'b')")
        return _PendingArray()

    def _build_array(self, state: Any) -> np.ndarray:
        if type(state) is not tuple or len(state) != 5 or state[0] != 1 or \
                type(state[3]) is not bool or type(state[4]) is not bytes:
            raise Refused('a numpy array state is not (1, shape, dtype, '
                          'fortran, bytes)')
        shape = _ints(state[1], 'a numpy shape')
        dtype = self._numeric_dtype(state[2])
        nbytes = math.prod(shape) * dtype.itemsize
        if len(state[4]) != nbytes:
            raise Refused(f'a numpy array of shape {shape} and dtype '
                          f'{dtype} needs {nbytes} bytes, its state has '
                          f'{len(state[4])}')
        self.charge(nbytes, f'a numpy array of shape {shape}')
        flat = np.frombuffer(state[4], dtype=dtype)
        return flat.reshape(shape, order='F' if state[3] else 'C').copy()

    def _call_scalar(self, args: tuple) -> np.generic:
        if len(args) != 2 or type(args[1]) is not bytes:
            raise Refused('numpy scalars are rebuilt from (dtype, bytes)')
        dtype = self._numeric_dtype(args[0])
        if len(args[1]) != dtype.itemsize:
            raise Refused(f'a numpy {dtype} scalar needs {dtype.itemsize} '
                          f'bytes, got {len(args[1])}')
        self.charge(dtype.itemsize, 'a numpy scalar')
        return np.frombuffer(args[1], dtype=dtype)[0]


def check_history_state(state: Any) -> None:
    """The state mmengine's ``HistoryBuffer.__getstate__`` writes, and
    nothing else."""
    if type(state) is not dict:
        raise Refused(f'a HistoryBuffer state is {describe(state)}, not a '
                      'dict')
    extra = sorted(map(repr, set(state) - _HISTORY_KEYS))
    if extra:
        raise Refused(f'a HistoryBuffer state sets {", ".join(extra)}, '
                      'which HistoryBuffer does not have')
    for key in ('_log_history', '_count_history'):
        value = state.get(key, np.zeros(0))
        if type(value) is not np.ndarray or value.ndim != 1 or \
                value.dtype.kind not in 'biuf':
            raise Refused(f'HistoryBuffer.{key} must be a 1-d numeric '
                          f'array, got {describe(value)}')
    if type(state.get('max_length', 0)) is not int:
        raise Refused('HistoryBuffer.max_length must be an int')
    methods = state.get('statistics_methods', {})
    functions = statistics_functions()
    if type(methods) is not dict or any(
            functions.get(k) is not v for k, v in methods.items()):
        raise Refused('HistoryBuffer.statistics_methods must map names to '
                      "HistoryBuffer's own statistics functions")


class LocationError(Exception):
    """torch could not place a checked storage (``map_location``): the
    caller's error, raised unchanged by :func:`safe_load`."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original
