"""The URL cache cannot be poisoned: keyed by the whole URL, checked by
SHA-256 on every read, revalidated, atomic, bounded, link-free.

Every case runs against a loopback server the test starts and stops.
"""
import collections
import hashlib
import os
import os.path as osp
import time

import pytest
import torch

from fgd_mmrazor.utils import UnsafeCheckpointError, safe_load
from fgd_mmrazor.utils.checkpoint import cached_download

from .conftest import serve


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def _leftovers(root):
    """Temporary or partial files anywhere in the cache."""
    return [f for f in _files(root) if '.download-' in f or
            '.meta-' in f or f.endswith('.partial')]


def _write(path, value):
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'state_dict': {'w': torch.full((2, ), float(value))}},
               path)
    return path


def _value(ckpt):
    return ckpt['state_dict']['w'][0].item()


def test_same_file_name_at_two_urls(tmp_path, hub_dir):
    _write(str(tmp_path / 's' / 'a' / 'model.pth'), 1)
    _write(str(tmp_path / 's' / 'b' / 'model.pth'), 2)
    with serve(str(tmp_path / 's')) as base:
        assert _value(safe_load(f'{base}/a/model.pth')) == 1
        assert _value(safe_load(f'{base}/b/model.pth')) == 2
        assert _value(safe_load(f'{base}/a/model.pth')) == 1


def test_the_query_is_part_of_the_key(tmp_path, hub_dir):
    _write(str(tmp_path / 's' / 'model.pth'), 1)
    with serve(str(tmp_path / 's')) as base:
        first = cached_download(f'{base}/model.pth?v=1')
        second = cached_download(f'{base}/model.pth?v=2')
    assert osp.dirname(first) != osp.dirname(second)


def test_an_updated_file_is_fetched_and_a_current_one_is_not(tmp_path,
                                                             hub_dir):
    path = _write(str(tmp_path / 's' / 'model.pth'), 1)
    counts = collections.Counter()
    with serve(str(tmp_path / 's'), counts) as base:
        url = f'{base}/model.pth'
        assert _value(safe_load(url)) == 1
        assert _value(safe_load(url)) == 1  # revalidated: 304
        _write(path, 2)
        later = time.time() + 10  # HTTP dates have whole seconds
        os.utime(path, (later, later))
        assert _value(safe_load(url)) == 2
    assert counts['/model.pth'] == 3


def test_a_file_named_with_its_hash_is_checked_and_never_refetched(
        tmp_path, hub_dir):
    tmp = _write(str(tmp_path / 'tmp.pth'), 3)
    digest = hashlib.sha256(open(tmp, 'rb').read()).hexdigest()
    os.makedirs(tmp_path / 's')
    os.replace(tmp, tmp_path / 's' / f'model-{digest[:8]}.pth')
    _write(str(tmp_path / 's' / 'forged-deadbeef.pth'), 4)
    counts = collections.Counter()
    with serve(str(tmp_path / 's'), counts) as base:
        url = f'{base}/model-{digest[:8]}.pth'
        assert _value(safe_load(url)) == 3
        assert _value(safe_load(url)) == 3
        with pytest.raises(UnsafeCheckpointError,
                           match='does not start with the hash'):
            safe_load(f'{base}/forged-deadbeef.pth')
    assert counts[f'/model-{digest[:8]}.pth'] == 1
    assert not any('forged' in f for f in _files(hub_dir))
    assert not _leftovers(hub_dir)


def test_an_html_page_is_refused_and_not_cached(tmp_path, hub_dir):
    (tmp_path / 's').mkdir()
    (tmp_path / 's' / 'model.pth').write_text(
        '<html><body>Service unavailable</body></html>')
    with serve(str(tmp_path / 's')) as base:
        with pytest.raises(UnsafeCheckpointError,
                           match='not a torch checkpoint'):
            safe_load(f'{base}/model.pth')
        _write(str(tmp_path / 's' / 'model.pth'), 5)
        assert _value(safe_load(f'{base}/model.pth')) == 5
    assert not _leftovers(hub_dir)


def test_a_body_without_length_is_bounded(tmp_path, hub_dir):
    with serve(str(tmp_path)) as base:
        with pytest.raises(UnsafeCheckpointError, match='exceeds the limit'):
            cached_download(f'{base}/stream/{1 << 20}', max_bytes=1 << 16)
    assert not [f for f in _files(hub_dir) if not f.endswith('.sha256')]


def test_dot_dot_names_no_folder_and_leaves_nothing(tmp_path, hub_dir):
    _write(str(tmp_path / 's' / 'x' / 'model.pth'), 1)
    with serve(str(tmp_path / 's')) as base:
        # The server answers with a directory listing (HTML).
        with pytest.raises(UnsafeCheckpointError):
            safe_load(f'{base}/x/..')
    assert not _leftovers(hub_dir)
    assert not [f for f in _files(hub_dir) if not f.endswith('.sha256')]


def test_a_planted_symlink_is_not_followed(tmp_path, hub_dir):
    _write(str(tmp_path / 's' / 'model.pth'), 1)
    evil = _write(str(tmp_path / 'elsewhere' / 'evil.pth'), 666)
    before = open(evil, 'rb').read()
    with serve(str(tmp_path / 's')) as base:
        url = f'{base}/model.pth'
        entry = cached_download(url)
        os.remove(entry)
        os.symlink(evil, entry)
        assert _value(safe_load(url)) == 1
        assert not osp.islink(entry)
    assert open(evil, 'rb').read() == before


def test_a_corrupted_entry_is_fetched_again(tmp_path, hub_dir):
    _write(str(tmp_path / 's' / 'model.pth'), 1)
    with serve(str(tmp_path / 's')) as base:
        url = f'{base}/model.pth'
        entry = cached_download(url)
        _write(entry, 9)  # a different file in place of the entry
        assert _value(safe_load(url)) == 1


def test_offline_uses_the_checked_entry(tmp_path, hub_dir):
    _write(str(tmp_path / 's' / 'model.pth'), 1)
    with serve(str(tmp_path / 's')) as base:
        url = f'{base}/model.pth'
        safe_load(url)
    # The server is gone: the entry is used (with a warning).
    assert _value(safe_load(url)) == 1
