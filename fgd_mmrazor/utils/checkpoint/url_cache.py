"""A content-checked download cache for checkpoint URLs.

:func:`cached_download` keeps one entry per URL (the whole URL, query
included) under ``<torch.hub.get_dir()>/checkpoints/fgd_mmrazor/``:

* ``<sha256(url)[:32]>/<file name>`` and, beside it, ``.sha256``: the
  SHA-256 of the file, checked on every read (an entry that does not
  match is fetched again);
* a file name that carries a hash (torch hub's and OpenMMLab's
  ``name-<8+ hex digits>.pth``) is checked against it; the file is then
  immutable and is never fetched again;
* any other URL is revalidated on every read with the ``ETag`` and
  ``Last-Modified`` the server gave (HTTP 304 keeps the entry), so an
  updated file is fetched; offline, the entry is used with a warning;
* downloads go to a temporary file in the entry's folder and are renamed
  into place only when complete and checked: no partial file is left, and
  a failed download leaves the old entry as it was;
* a body larger than :data:`MAX_BYTES` (or its ``Content-Length``), or one
  that is not a torch checkpoint (a zip archive or torch's legacy
  format; an HTML error page, say), is refused and not cached;
* nothing in the cache is followed through a symlink (entries are opened
  with ``O_NOFOLLOW``; a symlinked entry or folder is replaced).

In a distributed run local rank 0 downloads and the other ranks wait.
"""
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
from typing import Optional, Tuple
from urllib.parse import unquote, urlparse

import torch
from mmengine.logging import MMLogger

from .archive import LEGACY_MAGIC, ZIP_MAGIC
from .errors import Refused, UnsafeCheckpointError

__all__ = ['cached_download', 'open_entry', 'cache_dir', 'MAX_BYTES']

#: The largest download accepted (bytes).
MAX_BYTES = 8 << 30
_CHUNK = 1 << 20
_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z0-9]+$')
_TIMEOUT = 60


def cache_dir(model_dir: Optional[str] = None) -> str:
    """The cache's root folder."""
    return model_dir or osp.join(torch.hub.get_dir(), 'checkpoints',
                                 'fgd_mmrazor')


def _file_name(url: str) -> str:
    """The URL's last path segment, made a safe file name."""
    name = unquote(urlparse(url).path.rstrip('/').rsplit('/', 1)[-1])
    name = re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.')
    return name[-128:] or 'checkpoint.pth'


def _no_link(path: str) -> None:
    """Remove ``path`` if it is a symlink (never follow one)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _entry_folder(root: str, url: str) -> str:
    _no_link(root)
    os.makedirs(root, exist_ok=True)
    folder = osp.join(root, hashlib.sha256(url.encode()).hexdigest()[:32])
    _no_link(folder)
    os.makedirs(folder, exist_ok=True)
    return folder


def _read_meta(folder: str) -> dict:
    try:
        fd = os.open(osp.join(folder, '.sha256'), os.O_RDONLY |
                     os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            meta = json.load(f)
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def _sha256_of(path: str) -> Optional[str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _valid(folder: str, name: str) -> Tuple[bool, dict]:
    meta = _read_meta(folder)
    path = osp.join(folder, name)
    ok = bool(meta.get('sha256')) and _sha256_of(path) == meta['sha256']
    return ok, meta


def _download(url: str, folder: str, name: str, meta: dict,
              max_bytes: int) -> bool:
    """Fetch ``url`` into the entry; False when the server says the entry
    is current (HTTP 304)."""
    request = urllib.request.Request(url)
    if meta.get('etag'):
        request.add_header('If-None-Match', meta['etag'])
    if meta.get('last_modified'):
        request.add_header('If-Modified-Since', meta['last_modified'])
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code == 304 and meta:
            return False
        raise Refused(f'the server answered HTTP {err.code}') from None
    with response:
        length = response.headers.get('Content-Length')
        if length is not None and length.isdigit() and \
                int(length) > max_bytes:
            raise Refused(f'the server announces {length} bytes, over the '
                          f'limit of {max_bytes}')
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.download-')
        try:
            digest = hashlib.sha256()
            total, head = 0, b''
            with os.fdopen(fd, 'wb') as out:
                for chunk in iter(lambda: response.read(_CHUNK), b''):
                    total += len(chunk)
                    if total > max_bytes:
                        raise Refused(f'the body exceeds the limit of '
                                      f'{max_bytes} bytes')
                    if len(head) < len(LEGACY_MAGIC):
                        head += chunk[:len(LEGACY_MAGIC)]
                    digest.update(chunk)
                    out.write(chunk)
            if not (head.startswith(ZIP_MAGIC) or
                    head.startswith(LEGACY_MAGIC)):
                raise Refused('the body is not a torch checkpoint (it starts '
                              f'with {head[:16]!r})')
            sha = digest.hexdigest()
            expected = _HASH_IN_NAME.search(name)
            if expected and not sha.startswith(expected.group(1)):
                raise Refused(f'its SHA-256 {sha[:16]}... does not start '
                              f'with the hash in its name '
                              f'({expected.group(1)})')
            _no_link(osp.join(folder, name))
            os.replace(tmp, osp.join(folder, name))
        finally:
            if osp.lexists(tmp):
                os.unlink(tmp)
        new_meta = dict(url=url, sha256=sha,
                        etag=response.headers.get('ETag'),
                        last_modified=response.headers.get('Last-Modified'))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.meta-')
    with os.fdopen(fd, 'w') as f:
        json.dump(new_meta, f)
    _no_link(osp.join(folder, '.sha256'))
    os.replace(tmp, osp.join(folder, '.sha256'))
    return True


def _fetch(url: str, folder: str, name: str, max_bytes: int) -> None:
    ok, meta = _valid(folder, name)
    if ok and _HASH_IN_NAME.search(name):
        return  # immutable: its name carries its hash
    try:
        _download(url, folder, name, meta if ok else {}, max_bytes)
    except (urllib.error.URLError, OSError) as err:
        if not ok:
            raise
        MMLogger.get_current_instance().warning(
            f'Could not revalidate {url} ({err}); using the cached copy.')


def cached_download(url: str, model_dir: Optional[str] = None,
                    progress: bool = False,
                    max_bytes: int = MAX_BYTES) -> str:
    """Download ``url`` into the cache (see the module docstring) and
    return the path of the checked entry.

    Args:
        url (str): An ``http(s)://`` URL.
        model_dir (str, optional): The cache's root; default
            ``<torch.hub.get_dir()>/checkpoints/fgd_mmrazor``.
        progress (bool): Unused (kept for mmengine's signature).
        max_bytes (int): The largest body accepted.

    Raises:
        UnsafeCheckpointError: The body was refused (size, not a
            checkpoint, hash mismatch, HTTP error).
    """
    from mmengine.dist import barrier, get_dist_info
    folder = _entry_folder(cache_dir(model_dir), url)
    name = _file_name(url)
    rank, world_size = get_dist_info()
    local_rank = int(os.environ.get('LOCAL_RANK', rank))
    try:
        if local_rank == 0:
            _fetch(url, folder, name, max_bytes)
        if world_size > 1:
            barrier()
        if local_rank != 0 and not _valid(folder, name)[0]:
            _fetch(url, folder, name, max_bytes)
    except Refused as err:
        raise UnsafeCheckpointError(url, str(err)) from None
    path = osp.join(folder, name)
    if not _valid(folder, name)[0]:
        raise UnsafeCheckpointError(url, 'its cache entry does not match '
                                    'its recorded SHA-256')
    return path


def open_entry(path: str):
    """Open a cache entry without following links and check its SHA-256
    on the open file (so what is checked is what is read).

    Raises:
        UnsafeCheckpointError: The entry does not match its record.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    file = os.fdopen(fd, 'rb')
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(_CHUNK), b''):
        digest.update(chunk)
    if digest.hexdigest() != _read_meta(osp.dirname(path)).get('sha256'):
        file.close()
        raise UnsafeCheckpointError(path, 'the cache entry does not match '
                                    'its recorded SHA-256')
    file.seek(0)
    return file


def clear_cache(model_dir: Optional[str] = None) -> None:
    """Remove every cached download."""
    shutil.rmtree(cache_dir(model_dir), ignore_errors=True)
