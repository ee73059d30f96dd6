"""Reading one checkpoint file or stream: :func:`safe_load`.

The file must be a torch archive: a zip whose records are stored
uncompressed, inside the file, under one folder (what ``torch.save``
writes since torch 1.6), or torch's legacy format (a pickled magic number
first). Its directory is checked before any record is read; then torch's
own reader (``torch.serialization._load`` or ``_legacy_load``) runs with
:class:`~.unpickler.CheckpointUnpickler` and the :class:`~.rules.Rules`
of this file as its pickle module, so that storages are placed with
torch's ``map_location`` semantics while every object is made by the
rules. The result is checked once more (:mod:`.tree`).

Every refusal and every malformed archive raises
:class:`~.errors.UnsafeCheckpointError` naming the file and the reason.
An error in placing a storage (``map_location='cuda'`` on a machine
without one) is the caller's and is raised unchanged.
"""
import io
import os
import os.path as osp
import pickle
import re
import struct
import zipfile
from typing import Any, Dict, Union

import torch

from .errors import Refused, UnsafeCheckpointError
from .rules import LocationError, Rules
from .tree import check_checkpoint_tree

__all__ = ['safe_load', 'read_checkpoint', 'is_uri', 'LEGACY_MAGIC']

#: How torch's legacy format starts: its magic number, pickled.
LEGACY_MAGIC = pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)
ZIP_MAGIC = b'PK\x03\x04'
_MALFORMED = (RuntimeError, ValueError, TypeError, KeyError, IndexError,
              EOFError, AssertionError, AttributeError, OverflowError,
              UnicodeDecodeError, zipfile.BadZipFile, struct.error,
              pickle.UnpicklingError, MemoryError)


def is_uri(path: Any) -> bool:
    return isinstance(path, str) and re.match(r'^(\S+:)?\S+://', path) is \
        not None


class _Stream(io.RawIOBase):
    """A file without ``fileno``: torch's legacy reader then takes neither
    its tar branch nor its direct file reads."""

    def __init__(self, file) -> None:
        super().__init__()
        self._file = file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        return self._file.readline(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


def _zip_records(file, size: int) -> Dict[str, int]:
    """``{record name: size}`` of a torch zip archive, after checking its
    directory: stored (not compressed) records, inside the file, under
    one folder, with the pickle present."""
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
    if not infos:
        raise Refused('the zip archive is empty')
    folder = infos[0].filename.split('/', 1)[0]
    records = {}
    for info in infos:
        name = info.filename
        if not name.startswith(folder + '/') or '..' in name.split('/') or \
                name.startswith('/') or '\\' in name:
            raise Refused(f'the archive has a record named {name!r:.80}, '
                          f'outside its folder {folder!r:.40}')
        if info.compress_type != zipfile.ZIP_STORED or \
                info.compress_size != info.file_size:
            raise Refused(f'record {name!r:.80} is compressed (method '
                          f'{info.compress_type}); torch stores records '
                          'uncompressed, and a compressed one could inflate '
                          'beyond the file')
        if info.flag_bits & 0x1:
            raise Refused(f'record {name!r:.80} is encrypted')
        if info.header_offset + info.compress_size > size:
            raise Refused(f'record {name!r:.80} claims {info.file_size} '
                          'bytes past the end of the file')
        records[name[len(folder) + 1:]] = info.file_size
    if 'data.pkl' not in records:
        raise Refused('the archive has no data.pkl')
    return records


def read_checkpoint(file, map_location: Any = 'cpu') -> Any:
    """Load an open, seekable binary stream (see the module docstring).

    Raises:
        Refused: The file is refused or malformed.
        LocationError: torch could not place a storage.
    """
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    head = file.read(len(LEGACY_MAGIC))
    file.seek(0)
    ser = torch.serialization
    try:
        if head.startswith(ZIP_MAGIC):
            rules = Rules(size, _zip_records(file, size))
            file.seek(0)
            with ser._open_zipfile_reader(file) as reader:
                result = ser._load(reader, map_location,
                                   rules.pickle_module())
        elif head == LEGACY_MAGIC:
            rules = Rules(size)
            result = ser._legacy_load(
                _Stream(file), map_location, rules.pickle_module())
        else:
            raise Refused('it is not a torch checkpoint: neither a zip '
                          'archive (torch.save since torch 1.6) nor '
                          "torch's legacy format")
        check_checkpoint_tree(result)
    except (Refused, LocationError):
        raise
    except _MALFORMED as err:
        text = str(err).strip().splitlines()
        raise Refused(f'the archive is malformed ({type(err).__name__}: '
                      f'{text[0][:200] if text else ""})') from None
    return result


def safe_load(path: Union[str, os.PathLike, io.IOBase],
              map_location: Any = 'cpu') -> Any:
    """Load a checkpoint file, a URI or a stream without running code.

    Args:
        path (str | PathLike | file-like): A local path, any URI mmengine's
            ``CheckpointLoader`` knows (``https://``, ``torchvision://``,
            ``s3://`` ...; read through the safe loaders of
            :func:`~.routes.register_checkpoint_loader`), or an open,
            seekable binary stream.
        map_location: As for ``torch.load``. Defaults to 'cpu'.

    Raises:
        UnsafeCheckpointError: The file needs something outside the
            allow-list, exceeds its budget or is malformed; the message
            names the file and the reason.
        FileNotFoundError: A local path does not exist.
    """
    if is_uri(path):
        from .routes import load_uri
        return load_uri(path, map_location)
    if isinstance(path, (str, os.PathLike)):
        name = osp.expanduser(os.fspath(path))
        if not osp.isfile(name):
            raise FileNotFoundError(f'{name} can not be found.')
        with open(name, 'rb') as file:
            return _load_named(file, name, map_location)
    return _load_named(path, getattr(path, 'name', '<stream>'),
                       map_location)


def _load_named(file, name: str, map_location: Any) -> Any:
    try:
        return read_checkpoint(file, map_location)
    except Refused as err:
        raise UnsafeCheckpointError(str(name), str(err)) from None
    except LocationError as err:
        raise err.original from None
