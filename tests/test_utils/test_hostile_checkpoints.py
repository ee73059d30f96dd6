"""Hostile checkpoints cannot crash, hang or exhaust the process.

Each payload is built here, by hand where ``pickle`` cannot write it, in
both formats torch reads (a zip archive and torch's legacy format). The
crash and memory payloads are loaded in one subprocess under an
address-space limit (RLIMIT_AS, 768 MiB above what the imports take):
each must raise ``UnsafeCheckpointError`` naming the reason, the process
must not die of a signal, and its peak memory must stay bounded. The
others check that a refused file leaves the process unchanged (no class
mutated, no module imported) and that malformed archives get the same
error.
"""
import collections
import copy
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from fgd_mmrazor.utils import UnsafeCheckpointError, safe_load
from fgd_mmrazor.utils.checkpoint.archive import LEGACY_MAGIC

_reconstruct = np.core.multiarray._reconstruct \
    if hasattr(np, 'core') else np._core.multiarray._reconstruct


class Reduce:
    """Pickles as ``func(*args)`` followed by ``BUILD state``."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        if self.state is None:
            return self.func, self.args
        return self.func, self.args, self.state


# -- hand-written pickles --------------------------------------------------
def _global(module, name):
    return b'c' + f'{module}\n{name}\n'.encode()


def _str(text):
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data


def _pickle(*body):
    return b'\x80\x02' + b''.join(body) + b'.'


def _zip_with(path, data_pkl, extra=None, compress=None):
    """A torch zip archive whose data.pkl is ``data_pkl`` (and ``extra``
    records ``{name: bytes}``)."""
    torch.save({'x': 1}, path)
    with zipfile.ZipFile(path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    folder = entries[0][0].split('/')[0]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            zf.writestr(name, data_pkl if name.endswith('data.pkl') else
                        data)
        for name, data in (extra or {}).items():
            zf.writestr(f'{folder}/{name}', data,
                        compress_type=compress or zipfile.ZIP_STORED)
    return path


def _legacy_with(path, main_pkl):
    """torch's legacy format around a hand-written main pickle."""
    sys_info = dict(protocol_version=1001, little_endian=True,
                    type_sizes=dict(short=2, int=4, long=4))
    with open(path, 'wb') as f:
        f.write(LEGACY_MAGIC + pickle.dumps(1001, protocol=2) +
                pickle.dumps(sys_info, protocol=2) + main_pkl +
                pickle.dumps([], protocol=2))
    return path


def _save(path, obj, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=fmt == 'zip')
    return path


# -- the payloads that would crash or exhaust the process ----------------
def _memory_payloads(tmp_path, fmt):
    """name -> (path, what the refusal names)."""
    out = {}

    def save(name, obj, reason):
        out[name] = (_save(str(tmp_path / f'{name}.{fmt}.pth'), obj, fmt),
                     reason)

    # 1. An object array of 4M elements from a one-item list (segfaults
    #    an unchecked ndarray.__setstate__).
    save('object_array', Reduce(_reconstruct, (np.ndarray, (0, ), b'b'),
                                (1, (4194304, ), np.dtype('O'), False, [1])),
         'dtype')
    # 2. Forged dtypes: an object field with the "holds objects" flag
    #    cleared, a void dtype, a field at 1 GiB.
    save('forged_dtype', Reduce(np.dtype, ('f8', False, True),
                                (3, '<', None, ('a', ), {
                                    'a': (np.dtype('O'), 0)
                                }, 8, 1, 0)), 'dtype')
    save('void_dtype', Reduce(np.dtype, ('V8', False, True),
                              (3, '|', None, None, None, 8, 1, 0)),
         'dtype')
    save('far_field', Reduce(np.dtype, ('f8', False, True),
                             (3, '<', None, ('a', ), {
                                 'a': (np.dtype('f8'), 1 << 30)
                             }, 8, 1, 0)), 'dtype')
    # 3. Zero strides: a numpy array of 10^12 elements in 8 bytes, a
    #    tensor of 2x10^8 in 4 bytes (deep-copied by --resume into GBs),
    #    and a Counter over it (hangs for hours).
    huge = Reduce(np.ndarray, ((10**12, ), np.dtype('f8'), b'\0' * 8, 0,
                               (0, )))
    save('zero_stride_array', huge, 'numpy.ndarray')
    save('zero_stride_tensor', {'w': torch.zeros(1).expand(2 * 10**8)},
         'overlaps itself')
    save('counter', Reduce(collections.Counter, (huge, )),
         'collections.Counter')
    # 4. Containers the file does not pay for.
    save('bytearray', Reduce(bytearray, (3 << 30, )), 'builtins.bytearray')
    save('set', Reduce(set, ([1, 2], )), 'builtins.set')
    save('frozenset', Reduce(frozenset, ([1, 2], )), 'builtins.frozenset')
    # 5. Arrays whose bytes do not match their shape.
    save('short_array', Reduce(_reconstruct, (np.ndarray, (0, ), b'b'),
                               (1, (10**9, ), np.dtype('f8'), False,
                                b'\0' * 8)), 'needs 8000000000 bytes')
    # 6. Many views of one storage (each a tensor the budget pays for).
    base = torch.zeros(1 << 20)
    save('many_views', {f'v{i}': base[i:] for i in range(64)}, 'budget')
    # 7. A deflated record that inflates 1000:1.
    if fmt == 'zip':
        path = str(tmp_path / 'deflate.pth')
        torch.save({'w': torch.zeros(1 << 20)}, path)
        with zipfile.ZipFile(path) as zf:
            entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
        with zipfile.ZipFile(path, 'w') as zf:
            for name, data in entries:
                zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED
                            if '/data/' in name else zipfile.ZIP_STORED)
        out['deflate'] = (path, 'compressed')
    return out


_CHILD = textwrap.dedent('''
    import json, os, resource, signal, sys
    import fgd_mmrazor  # noqa: F401
    from fgd_mmrazor.utils import UnsafeCheckpointError, safe_load

    def vsz():
        pages = int(open('/proc/self/statm').read().split()[0])
        return pages * os.sysconf('SC_PAGE_SIZE')

    limit = vsz() + (768 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.alarm(120)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {}
    for name, path in json.loads(sys.argv[1]).items():
        try:
            safe_load(path)
            results[name] = 'loaded'
        except UnsafeCheckpointError as err:
            results[name] = 'refused: ' + err.reason
        except BaseException as err:
            results[name] = f'{type(err).__name__}: {err}'
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
    print(json.dumps(dict(results=results, peak_kb=peak)))
''')


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_crash_and_memory_payloads_are_refused_in_bounds(tmp_path, fmt):
    payloads = _memory_payloads(tmp_path, fmt)
    proc = subprocess.run(
        [sys.executable, '-c', _CHILD,
         json.dumps({k: v[0] for k, v in payloads.items()})],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.getcwd(), os.environ.get('PYTHONPATH', '')])))
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (_, reason) in payloads.items():
        result = report['results'][name]
        assert result.startswith('refused: '), (name, result)
        assert reason in result, (name, result)
    # The whole run: well under the 768 MiB it was allowed.
    assert report['peak_kb'] < 256 << 10, report


# -- the process is left as it was ---------------------------------------
def _refuses(path, *words):
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in err.value.reason, err.value.reason
    return err.value


@pytest.fixture(params=['zip', 'legacy'])
def hand_made(request, tmp_path):
    """Writes a hand-made main pickle in the format of the parameter."""

    def write(body):
        path = str(tmp_path / f'hand.{request.param}.pth')
        if request.param == 'zip':
            return _zip_with(path, body)
        return _legacy_with(path, body)

    return write


def test_build_on_a_class_is_refused_and_changes_nothing(hand_made):
    body = _pickle(_global('torch', 'UntypedStorage'), b'}',
                   _str('__deepcopy__'), _global('builtins', 'getattr'),
                   b's', b'b')
    _refuses(hand_made(body), 'the class torch')
    assert '__deepcopy__' not in vars(torch.UntypedStorage)
    copy.deepcopy(torch.ones(2))  # still works


def test_build_on_a_function_is_refused_and_changes_nothing(hand_made):
    defaults = HistoryBuffer.mean.__defaults__
    body = b'\x80\x04' + _str('mmengine.logging.history_buffer') + \
        _str('HistoryBuffer.mean') + b'\x93' + b'}' + \
        _str('__defaults__') + b'(K\x07t' + b's' + b'b' + b'.'
    _refuses(hand_made(body), 'the function')
    assert HistoryBuffer.mean.__defaults__ == defaults


def test_a_disallowed_global_is_refused_before_any_import(tmp_path):
    path = _zip_with(str(tmp_path / 'dynamo.pth'),
                     _pickle(_global('torch', '_dynamo')))
    benign = _save(str(tmp_path / 'ok.pth'), {'w': torch.ones(1)}, 'zip')
    # torch's reader imports its own config on first use: load a benign
    # file first.
    code = ('import sys, fgd_mmrazor\n'
            'from fgd_mmrazor.utils import safe_load\n'
            f'safe_load({benign!r})\n'
            'before = set(sys.modules)\n'
            'try:\n'
            f'    safe_load({path!r})\n'
            'except Exception as err:\n'
            '    print(type(err).__name__, err.reason)\n'
            'print(sorted(set(sys.modules) - before))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120, check=True,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith('UnsafeCheckpointError it needs the global '
                               'torch._dynamo'), out.stdout
    assert lines[-1] == '[]', lines[-1]


def test_rebuild_from_type_is_not_callable(hand_made):
    """torch's _rebuild_from_type_v2 would call any function it is given
    (HistoryBuffer.max here); it is not allow-listed."""
    body = _pickle(_global('torch._tensor', '_rebuild_from_type_v2'),
                   b'(', _global('builtins', 'getattr'),
                   _global('mmengine.logging.history_buffer',
                           'HistoryBuffer'), _str('max'), b'\x86R', b')',
                   b')', b'}', b'tR')
    _refuses(hand_made(body), 'torch._tensor._rebuild_from_type_v2')


# -- malformed archives: the same error, with the reason -----------------
def _tensor_pickle(key='0', offset=0, size=(4, ), stride=(1, ), numel=4):
    ints = b''.join(b'J' + struct.pack('<i', v) for v in size)
    strides = b''.join(b'J' + struct.pack('<i', v) for v in stride)
    return _pickle(
        _global('torch._utils', '_rebuild_tensor_v2'), b'(',
        b'(', _str('storage'), _global('torch', 'FloatStorage'), _str(key),
        _str('cpu'), b'J' + struct.pack('<i', numel), b't', b'Q',
        b'J' + struct.pack('<i', offset), b'(' + ints + b't',
        b'(' + strides + b't', b'\x89',
        _global('collections', 'OrderedDict'), b')R', b'tR')


@pytest.mark.parametrize('case,words', [
    (dict(key='../../etc/passwd'), ['key']),
    (dict(key='7'), ['no record data/7']),
    (dict(offset=-1), ['offset']),
    (dict(numel=1 << 20), ['claims 4194304 bytes', 'record holds 16']),
    (dict(size=(8, )), ['reaches past its storage']),
    (dict(size=(4, ), stride=(-1, )), ['stride']),
])
def test_malformed_storage_references(tmp_path, case, words):
    path = _zip_with(str(tmp_path / 'bad.pth'), _tensor_pickle(**case),
                     extra={'data/0': b'\0' * 16})
    _refuses(path, *words)


def test_the_hand_made_tensor_pickle_loads_when_well_formed(tmp_path):
    """The pickle of the malformed cases is a valid checkpoint as is."""
    data = np.arange(4, dtype='<f4').tobytes()
    path = _zip_with(str(tmp_path / 'ok.pth'), _tensor_pickle(),
                     extra={'data/0': data})
    torch.testing.assert_close(safe_load(path), torch.arange(4.))


@pytest.mark.parametrize('data', [
    b'<html><body>502 Bad Gateway</body></html>',
    b'PK\x03\x04 truncated zip',
    LEGACY_MAGIC + b'\x80\x02K',
    pickle.dumps({'a': 1}),
    b'',
])
def test_files_that_are_not_checkpoints(tmp_path, data):
    path = tmp_path / 'x.pth'
    path.write_bytes(data)
    _refuses(str(path))


def test_truncated_and_odd_pickles(hand_made):
    for body in (b'\x80\x02X\xff\xff\xff\x7f', b'\x80\x02}(K\x01u.',
                 b'\x80\x02h\x05.', b'\x80\x02(((((.', b'\x80\x05K\x01.'):
        _refuses(hand_made(body))


def test_deep_nesting_is_refused(hand_made):
    _refuses(hand_made(_pickle(b']' * 200 + b'a' * 199)), 'nests deeper')


def test_map_location_errors_are_the_callers(tmp_path):
    """A storage that cannot be placed is not the file's fault: torch's
    own error comes through."""
    path = str(tmp_path / 'ok.pth')
    torch.save({'w': torch.ones(2)}, path)
    with pytest.raises(RuntimeError) as err:
        safe_load(path, map_location='nosuchdevice')
    assert not isinstance(err.value, UnsafeCheckpointError)


def test_meta_tensors_load_as_meta(tmp_path):
    """A meta tensor costs nothing and holds no data: it loads (the
    teacher loader refuses it, test_load_teacher_checkpoint_*)."""
    path = str(tmp_path / 'meta.pth')
    torch.save({'w': torch.empty(10**6, device='meta')}, path)
    assert safe_load(path)['w'].is_meta


def test_shared_and_transposed_views_load(tmp_path):
    """Tied weights (the same view twice) and a transposed view are what
    real checkpoints hold; they stay within the budget."""
    w = torch.arange(12.).reshape(3, 4)
    path = str(tmp_path / 'views.pth')
    torch.save({'a': w, 'b': w.detach(), 'c': w.t(), 'd': w[1:, ::2]},
               path)
    out = safe_load(path)
    assert torch.equal(out['c'], w.t()) and torch.equal(out['d'], w[1:, ::2])
    out['a'][0, 0] = -1  # one storage, as saved
    assert out['c'][0, 0] == -1 and out['b'][0, 0] == -1


def test_read_checkpoint_reads_streams():
    buffer = io.BytesIO()
    torch.save({'w': torch.ones(3)}, buffer)
    buffer.seek(0)
    assert safe_load(buffer)['w'].sum() == 3
