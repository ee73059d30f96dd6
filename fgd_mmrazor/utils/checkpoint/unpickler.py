"""A pickle machine that builds nothing by itself.

:class:`CheckpointUnpickler` reads the opcodes that ``torch.save`` and
``pickle`` (protocols 2 to 4) write. Structural opcodes (numbers, strings,
tuples, lists, dicts, the memo, marks) are carried out here, on Python's
own types only; every opcode that would make or change an object of any
other type is handed to a :class:`~.rules.Rules` object:

* ``GLOBAL``/``STACK_GLOBAL`` -> ``rules.find_global`` (a table lookup: no
  module is imported, no attribute is read);
* ``REDUCE`` -> ``rules.call``, ``NEWOBJ`` -> ``rules.new``, ``BUILD`` ->
  ``rules.build`` (which may replace a placeholder by the finished object;
  the memo follows);
* ``BINPERSID`` -> ``rules.storage`` (torch's storage records).

Opcodes that ``torch.save`` never writes (``INST``, ``OBJ``, ``EXT*``,
``NEWOBJ_EX``, sets, bytearrays, out-of-band buffers, the text protocol 0
forms) are refused. Lengths are checked against the bytes left in the file
before anything is read. torch's loaders subclass this class as they do
``pickle.Unpickler`` (their ``find_class`` handles storage type names and
they assign ``persistent_load``), so the same machine reads zip archives
and torch's legacy format.
"""
import _compat_pickle
import io
import pickle
import struct
from collections import OrderedDict
from typing import Any, Callable, Dict, List

from .errors import Refused

__all__ = ['CheckpointUnpickler', 'Pending']


class Pending:
    """A placeholder returned by a rule for an object that its ``BUILD``
    finishes (a numpy array or dtype); the memo slots that hold it are
    updated when it is built."""

    __slots__ = ('slots', )

    def __init__(self) -> None:
        self.slots: List[int] = []


_OPS: Dict[int, str] = {}


def _op(*codes: bytes) -> Callable:
    def register(func):
        for code in codes:
            _OPS[code[0]] = func.__name__
        return func

    return register


class CheckpointUnpickler:
    """The pickle machine (see the module docstring).

    Args:
        file: A binary stream positioned at a pickle.
        encoding (str): How protocol-2 ``str`` of Python 2 is decoded.
            'bytes' keeps bytes.
        errors (str): Decoding errors.
    """

    #: The rules of one load; torch's loaders create several unpicklers
    #: per file (torch's legacy format), which share them.
    rules: Any = None

    def __init__(self, file, *, encoding: str = 'ASCII',
                 errors: str = 'strict', **kwargs) -> None:
        self._file = file
        self.read, self.readline = file.read, file.readline
        here = file.tell()
        self._end = file.seek(0, io.SEEK_END)
        file.seek(here)
        self.encoding, self.errors = encoding, errors
        self.memo: Dict[int, Any] = {}
        self.proto = 0

    # -- what subclasses and torch override ------------------------------
    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed object of a global (never an import)."""
        if self.proto < 3 and (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif self.proto < 3:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        return self.rules.find_global(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise Refused('the pickle refers to external data outside a torch '
                      'archive')

    # -- the machine ------------------------------------------------------
    def _take(self, size: int) -> bytes:
        if size < 0 or size > self._end - self._file.tell():
            raise Refused(f'the pickle is truncated or claims a {size}-byte '
                          'field that the file does not hold')
        data = self.read(size)
        if len(data) != size:
            raise Refused('the pickle is truncated')
        return data

    def _unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def load(self) -> Any:
        """Read one pickle and return its object."""
        self.stack: List[Any] = []
        self.metastack: List[List[Any]] = []
        while True:
            key = self.read(1)
            if not key:
                raise Refused('the pickle ends without STOP')
            name = _OPS.get(key[0])
            if name is None:
                raise Refused(f'pickle opcode {_opname(key)} is not one '
                              'that torch.save writes')
            if name == 'stop':
                if len(self.stack) != 1 or self.metastack:
                    raise Refused('the pickle stops with a malformed stack')
                return self.stack.pop()
            getattr(self, name)()

    def _pop(self) -> Any:
        if not self.stack:
            raise Refused('the pickle pops from an empty stack')
        return self.stack.pop()

    def _top(self) -> Any:
        if not self.stack:
            raise Refused('the pickle reads an empty stack')
        return self.stack[-1]

    def _pop_mark(self) -> List[Any]:
        if not self.metastack:
            raise Refused('the pickle closes a MARK it never opened')
        items, self.stack = self.stack, self.metastack.pop()
        return items

    # Framing and control.
    @_op(pickle.PROTO)
    def proto_(self) -> None:
        self.proto = self._take(1)[0]
        if not 2 <= self.proto <= 4:
            raise Refused(f'pickle protocol {self.proto} is not 2 to 4')

    @_op(pickle.FRAME)
    def frame(self) -> None:
        size = self._unpack('<Q')
        if size > self._end - self._file.tell():
            raise Refused('a pickle frame is longer than the file')

    @_op(pickle.STOP)
    def stop(self) -> None:  # handled in load()
        pass

    @_op(pickle.MARK)
    def mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    @_op(pickle.POP)
    def pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    @_op(pickle.POP_MARK)
    def pop_mark(self) -> None:
        self._pop_mark()

    @_op(pickle.DUP)
    def dup(self) -> None:
        self.stack.append(self._top())

    # Atoms.
    @_op(pickle.NONE)
    def none(self) -> None:
        self.stack.append(None)

    @_op(pickle.NEWTRUE)
    def true(self) -> None:
        self.stack.append(True)

    @_op(pickle.NEWFALSE)
    def false(self) -> None:
        self.stack.append(False)

    @_op(pickle.BININT)
    def binint(self) -> None:
        self.stack.append(self._unpack('<i'))

    @_op(pickle.BININT1)
    def binint1(self) -> None:
        self.stack.append(self._take(1)[0])

    @_op(pickle.BININT2)
    def binint2(self) -> None:
        self.stack.append(self._unpack('<H'))

    @_op(pickle.LONG1)
    def long1(self) -> None:
        data = self._take(self._take(1)[0])
        self.stack.append(int.from_bytes(data, 'little', signed=True))

    @_op(pickle.LONG4)
    def long4(self) -> None:
        data = self._take(self._unpack('<i'))
        self.stack.append(int.from_bytes(data, 'little', signed=True))

    @_op(pickle.BINFLOAT)
    def binfloat(self) -> None:
        self.stack.append(self._unpack('>d'))

    def _text(self, size: int) -> None:
        self.stack.append(
            str(self._take(size), 'utf-8', 'surrogatepass'))

    @_op(pickle.BINUNICODE)
    def binunicode(self) -> None:
        self._text(self._unpack('<I'))

    @_op(pickle.SHORT_BINUNICODE)
    def short_binunicode(self) -> None:
        self._text(self._take(1)[0])

    @_op(pickle.BINUNICODE8)
    def binunicode8(self) -> None:
        self._text(self._unpack('<Q'))

    @_op(pickle.BINBYTES)
    def binbytes(self) -> None:
        self.stack.append(self._take(self._unpack('<I')))

    @_op(pickle.SHORT_BINBYTES)
    def short_binbytes(self) -> None:
        self.stack.append(self._take(self._take(1)[0]))

    @_op(pickle.BINBYTES8)
    def binbytes8(self) -> None:
        self.stack.append(self._take(self._unpack('<Q')))

    def _py2_string(self, size: int) -> None:
        data = self._take(size)
        self.stack.append(data if self.encoding == 'bytes' else data.decode(
            self.encoding, self.errors))

    @_op(pickle.SHORT_BINSTRING)
    def short_binstring(self) -> None:
        self._py2_string(self._take(1)[0])

    @_op(pickle.BINSTRING)
    def binstring(self) -> None:
        self._py2_string(self._unpack('<i'))

    # Containers of Python's own types.
    @_op(pickle.EMPTY_TUPLE)
    def empty_tuple(self) -> None:
        self.stack.append(())

    @_op(pickle.TUPLE)
    def tuple_(self) -> None:
        items = tuple(self._pop_mark())  # before self.stack is read
        self.stack.append(items)

    @_op(pickle.TUPLE1)
    def tuple1(self) -> None:
        self.stack.append((self._pop(), ))

    @_op(pickle.TUPLE2)
    def tuple2(self) -> None:
        second = self._pop()
        self.stack.append((self._pop(), second))

    @_op(pickle.TUPLE3)
    def tuple3(self) -> None:
        third, second = self._pop(), self._pop()
        self.stack.append((self._pop(), second, third))

    @_op(pickle.EMPTY_LIST)
    def empty_list(self) -> None:
        self.stack.append([])

    def _list(self) -> list:
        target = self._top()
        if type(target) is not list:
            raise Refused('the pickle appends to '
                          f'{type(target).__qualname__}, not to a list')
        return target

    @_op(pickle.APPEND)
    def append(self) -> None:
        item = self._pop()
        self._list().append(item)

    @_op(pickle.APPENDS)
    def appends(self) -> None:
        items = self._pop_mark()
        self._list().extend(items)

    @_op(pickle.EMPTY_DICT)
    def empty_dict(self) -> None:
        self.stack.append({})

    def _dict(self) -> dict:
        target = self._top()
        if type(target) not in (dict, OrderedDict):
            raise Refused('the pickle sets items of '
                          f'{type(target).__qualname__}, not of a dict')
        return target

    def _set_items(self, items: List[Any]) -> None:
        if len(items) % 2:
            raise Refused('the pickle sets a key without a value')
        target = self._dict()
        for i in range(0, len(items), 2):
            key = items[i]
            if type(key) not in (str, int, float, bool, bytes, tuple,
                                 type(None)):
                raise Refused(f'a dict key is {type(key).__qualname__}')
            target[key] = items[i + 1]

    @_op(pickle.SETITEM)
    def setitem(self) -> None:
        value = self._pop()
        key = self._pop()
        self._set_items([key, value])

    @_op(pickle.SETITEMS)
    def setitems(self) -> None:
        self._set_items(self._pop_mark())

    # The memo.
    def _put(self, index: int) -> None:
        value = self._top()
        if isinstance(value, Pending):
            value.slots.append(index)
        self.memo[index] = value

    @_op(pickle.BINPUT)
    def binput(self) -> None:
        self._put(self._take(1)[0])

    @_op(pickle.LONG_BINPUT)
    def long_binput(self) -> None:
        self._put(self._unpack('<I'))

    @_op(pickle.MEMOIZE)
    def memoize(self) -> None:
        self._put(len(self.memo))

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise Refused(f'the pickle reads memo slot {index}, never set')
        self.stack.append(self.memo[index])

    @_op(pickle.BINGET)
    def binget(self) -> None:
        self._get(self._take(1)[0])

    @_op(pickle.LONG_BINGET)
    def long_binget(self) -> None:
        self._get(self._unpack('<I'))

    # What the rules decide.
    def _global(self, module: Any, name: Any) -> None:
        if type(module) is not str or type(name) is not str:
            raise Refused('a global is named by non-strings')
        self.stack.append(self.find_class(module, name))

    @_op(pickle.GLOBAL)
    def global_(self) -> None:
        module = self._line()
        self._global(module, self._line())

    def _line(self) -> str:
        line = self.readline(257)
        if not line.endswith(b'\n'):
            raise Refused('a global name is longer than 256 bytes')
        return line[:-1].decode('utf-8')

    @_op(pickle.STACK_GLOBAL)
    def stack_global(self) -> None:
        name = self._pop()
        self._global(self._pop(), name)

    @_op(pickle.REDUCE)
    def reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        if type(args) is not tuple:
            raise Refused('REDUCE without an argument tuple')
        self.stack.append(self.rules.call(func, args))

    @_op(pickle.NEWOBJ)
    def newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        if type(args) is not tuple:
            raise Refused('NEWOBJ without an argument tuple')
        self.stack.append(self.rules.new(cls, args))

    @_op(pickle.BUILD)
    def build(self) -> None:
        state = self._pop()
        inst = self._top()
        built = self.rules.build(inst, state)
        if built is not inst:
            self.stack[-1] = built
            for slot in inst.slots:
                if self.memo.get(slot) is inst:
                    self.memo[slot] = built

    @_op(pickle.BINPERSID)
    def binpersid(self) -> None:
        pid = self._pop()
        self.stack.append(self.rules.storage(pid, self.persistent_load))


def _opname(key: bytes) -> str:
    for name in dir(pickle):
        if name.isupper() and getattr(pickle, name) == key:
            return name
    return repr(key)
