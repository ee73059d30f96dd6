"""Safe checkpoint loading under attack: code execution.

Every payload is built here and checked to be live where it can be (an
unrestricted ``torch.load``, and the deep copy that ``--resume`` makes of
the message hub, write the marker file). Then every route that reads a
checkpoint must refuse it, name the file and what was refused, and leave
the marker unwritten, in both formats torch reads (zip archive and legacy
format) and over http from a loopback port the test opens and closes.
Crashes, memory and malformed archives: test_hostile_checkpoints.py; the
URL cache: test_url_cache.py.
"""
import contextlib
import copy
import copyreg
import functools
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mme_ckpt
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from fgd_mmrazor.utils import (UnsafeCheckpointError, export_student,
                               load_teacher_checkpoint, safe_load)
from fgd_mmrazor.utils import checkpoint as ckpt_mod

from .conftest import serve


@pytest.fixture(params=['zip', 'legacy'])
def loader_path(request, monkeypatch):
    """Both torch readers, each running the project's unpickler: the zip
    archive of torch.save (torch >= 1.6) and torch's legacy format, which
    ``torch.save`` writes here for the whole test."""
    if request.param == 'legacy':
        save = torch.save
        monkeypatch.setattr(
            torch, 'save', lambda obj, f, **kw: save(
                obj, f, _use_new_zipfile_serialization=False, **kw))
    return request.param


class Call:
    """Pickles as ``func(*args)``; ``func`` may itself be a ``Call``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):  # pickle wants a callable func
        raise AssertionError('only pickled')


class Planted:
    """Pickles as a HistoryBuffer whose restored state adds ``attrs``."""

    def __init__(self, **attrs):
        self.attrs = attrs

    @property
    def __class__(self):  # what pickle's NEWOBJ check reads
        return HistoryBuffer

    def __reduce__(self):
        state = dict(_log_history=np.array([1.0]),
                     _count_history=np.array([1]), max_length=10,
                     **self.attrs)
        return copyreg.__newobj__, (HistoryBuffer, ), state


def _builtins():
    return Call(getattr, getattr, '__self__')  # the builtins module


def _payloads(marker):
    """name -> (object to hide in a checkpoint, live): ``live`` payloads
    run code under an unrestricted load (checked by the test)."""
    code = f'open({marker!r}, "w").close()'
    exec_ = Call(getattr, _builtins(), 'exec')
    tensor = torch.zeros(2)
    tensor.__deepcopy__ = Call(getattr, HistoryBuffer, 'min')
    return {
        'reduce_exec': (Call(exec, code), True),
        'reduce_os_system': (Call(os.system, f'touch {marker}'), True),
        'getattr_chain_to_exec': (Call(exec_, code), True),
        'planted_deepcopy_partial': (Planted(
            __deepcopy__=functools.partial(exec, code)), True),
        'planted_exec_via_getattr': (Planted(__reduce_ex__=exec_), False),
        'planted_allow_listed_function': (Planted(
            __deepcopy__=Call(getattr, HistoryBuffer, 'min')), False),
        'poisoned_statistics_methods': (Planted(
            statistics_methods={'min': exec_}), False),
        'getattr_dunder': (Call(getattr, HistoryBuffer, '__init__'), False),
        'getattr_private': (Call(getattr, HistoryBuffer,
                                 '_statistics_methods'), False),
        'getattr_other_method': (Call(getattr, HistoryBuffer, 'update'),
                                 False),
        'getattr_numpy': (Call(getattr, np.ndarray, 'tofile'), False),
        'call_history_buffer': (Call(HistoryBuffer, [1.0], [1], 5), False),
        'tensor_with_planted_attribute': (tensor, False),
    }


def _save(path, payload):
    torch.save({'meta': {'epoch': 1}, 'state_dict': {'w': torch.ones(2)},
                'message_hub': {'log_scalars': {'x': payload}}}, path)
    return path


def _resume_like(ckpt):
    """What ``--resume`` does to the message hub: a deep copy."""
    copy.deepcopy(ckpt)


@pytest.mark.parametrize('name', sorted(_payloads('m')))
def test_payload_is_refused(name, tmp_path, loader_path):
    marker = str(tmp_path / 'marker')
    payload, live = _payloads(marker)[name]
    path = _save(str(tmp_path / f'{name}.pth'), payload)
    if name == 'tensor_with_planted_attribute':
        saved = torch.load(path, weights_only=False)['message_hub'][
            'log_scalars']['x']
        if '__deepcopy__' not in vars(saved):
            pytest.skip(f'torch {torch.__version__} does not pickle a '
                        "tensor's attributes")
    if live:  # the payload does run code when loaded without safety
        with contextlib.suppress(Exception):
            _resume_like(torch.load(path, weights_only=False))
        assert osp.exists(marker), name
        os.remove(marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        _resume_like(safe_load(path))
    assert path in str(err.value)
    assert not osp.exists(marker)


@pytest.mark.parametrize('global_name,payload', [
    ('builtins.exec', Call(exec, 'pass')),
    (f'{os.system.__module__}.system', Call(os.system, 'true')),
])
def test_refusal_names_the_global(global_name, payload, tmp_path,
                                  loader_path):
    path = _save(str(tmp_path / 'evil.pth'), payload)
    with pytest.raises(UnsafeCheckpointError,
                       match=f'needs the global {global_name}'):
        safe_load(path)


def _routes(model):
    return {
        'safe_load': safe_load,
        'mmengine _load_checkpoint (load_from, --resume, test.py)':
        _load_checkpoint,
        'CheckpointLoader': CheckpointLoader.load_checkpoint,
        'mmengine load_checkpoint (init_cfg, visualize_masks)':
        lambda p: mme_ckpt.load_checkpoint(model, p),
        'teacher_ckpt': lambda p: load_teacher_checkpoint(model, p),
        'export_student': lambda p: export_student(p, p + '.out'),
    }


class _Tiny(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))


def test_every_local_route_refuses(tmp_path, loader_path):
    marker = str(tmp_path / 'marker')
    path = _save(str(tmp_path / 'evil.pth'),
                 _payloads(marker)['getattr_chain_to_exec'][0])
    for route, load in _routes(_Tiny()).items():
        with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
            _resume_like(load(path))
        assert not osp.exists(marker), route


def _mmengine_like_checkpoint(path):
    hub = MessageHub.get_instance(f'ckpt_test_{os.getpid()}')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', 3)
    model = _Tiny()
    optim = torch.optim.AdamW(model.parameters(), lr=0.1)
    model.w.sum().backward()
    optim.step()
    torch.save(
        dict(meta=dict(epoch=1, iter=3, seed=np.int64(0),
                       mean=np.array([1., 2.])),
             state_dict=model.state_dict(), message_hub=hub.state_dict(),
             optimizer=optim.state_dict()), path)
    return path


def test_benign_checkpoint_loads_and_resumes(tmp_path, loader_path):
    path = _mmengine_like_checkpoint(str(tmp_path / 'ok.pth'))
    ckpt = safe_load(path)
    # One AdamW step (lr 0.1, weight decay 0.01) from 1.
    torch.testing.assert_close(ckpt['state_dict']['w'],
                               torch.full((2, ), 0.899))
    assert type(ckpt['state_dict']).__name__ == 'OrderedDict'
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert type(buf) is HistoryBuffer
    assert buf.mean() == 1.0 and buf.current() == 0.5
    hub = MessageHub.get_instance(f'ckpt_resume_{os.getpid()}')
    hub.load_state_dict(ckpt['message_hub'])  # deep-copies the buffers
    assert hub.get_scalar('train/loss').statistics('min') == 0.5
    assert ckpt['optimizer']['state'][0]['step'] == 1
    for route, load in _routes(_Tiny()).items():
        load(path)


def test_urls_are_loaded_safely(tmp_path, hub_dir, loader_path,
                                monkeypatch):
    served = tmp_path / 'served'
    served.mkdir()
    marker = str(tmp_path / 'marker')
    _save(str(served / 'evil.pth'),
          _payloads(marker)['getattr_chain_to_exec'][0])
    _save(str(served / 'evil2.pth'), Call(os.system, f'touch {marker}'))
    _mmengine_like_checkpoint(str(served / 'ok.pth'))
    with serve(str(served)) as base:
        monkeypatch.setattr(mme_ckpt, 'get_torchvision_models',
                            lambda: {'evil2': f'{base}/evil2.pth'})
        for route, load in _routes(_Tiny()).items():
            with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
                _resume_like(load(f'{base}/evil.pth'))
            assert not osp.exists(marker), route
        with pytest.raises(UnsafeCheckpointError, match='posix.system'):
            _load_checkpoint('torchvision://evil2')
        assert not osp.exists(marker)
        ckpt = safe_load(f'{base}/ok.pth')
        assert ckpt['meta']['iter'] == 3
        assert _load_checkpoint(f'{base}/ok.pth')['meta']['epoch'] == 1
    # Downloaded once to the checked cache under the hub folder.
    cached = [f for _, _, files in os.walk(hub_dir) for f in files]
    assert cached.count('ok.pth') == 1 and 'evil.pth' in cached


def test_every_mmengine_scheme_has_a_safe_loader():
    ours = {loader for _, loader in ckpt_mod.SAFE_SCHEMES}
    ours.add(ckpt_mod.refuse_scheme)
    assert set(CheckpointLoader._schemes.values()) <= ours
    assert CheckpointLoader._schemes[''] is ckpt_mod.SAFE_SCHEMES[0][1]


def test_unknown_scheme_is_refused(tmp_path):
    CheckpointLoader.register_scheme('fgdtest://', lambda f, m=None: {},
                                     force=True)
    try:
        ckpt_mod.register_checkpoint_loader()
        with pytest.raises(UnsafeCheckpointError, match='no safe loader'):
            _load_checkpoint('fgdtest://x.pth')
    finally:
        CheckpointLoader._schemes.pop('fgdtest://')


def _checkpoint_with_tensors_and_history(path):
    hub = MessageHub.get_instance(f'ckpt_test_{os.getpid()}')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', 3)
    state = {'w': torch.arange(6.).reshape(2, 3),
             'p': torch.nn.Parameter(torch.ones(2))}
    optim = torch.optim.AdamW([state['p']], lr=0.1)
    state['p'].sum().backward()
    optim.step()
    torch.save(
        dict(meta=dict(epoch=1, iter=3, seed=np.int64(0),
                       mean=np.array([1., 2.])),
             state_dict=state, message_hub=hub.state_dict(),
             optimizer=optim.state_dict()), path)


def test_safe_load_reads_mmengine_checkpoints(tmp_path, loader_path):
    path = str(tmp_path / 'ckpt.pth')
    _checkpoint_with_tensors_and_history(path)
    ckpt = safe_load(path)
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(6.).reshape(2, 3))
    assert ckpt['meta']['iter'] == 3
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert buf.mean() == 1.0 and buf.current() == 0.5
    assert ckpt['optimizer']['state'][0]['step'] == 1


def _as_other_numpy(path):
    """Rewrite a checkpoint's numpy rebuild functions to the other numpy
    major's module names (numpy 2 pickles ``numpy._core.multiarray``,
    numpy 1 ``numpy.core.multiarray``), as a file from that numpy would
    name them."""
    import zipfile
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    old, new = b'numpy.core.multiarray\n', b'numpy._core.multiarray\n'
    if not any(old in data for info, data in entries
               if info.filename.endswith('data.pkl')):
        old, new = new, old
    renamed = False
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        for info, data in entries:
            if info.filename.endswith('data.pkl'):
                renamed = old in data
                data = data.replace(old, new)
            zf.writestr(info, data)
    return renamed


def test_safe_load_reads_checkpoints_of_either_numpy(tmp_path):
    """numpy 2 writes numpy._core.multiarray._reconstruct where numpy 1
    wrote numpy.core.multiarray._reconstruct: both load (an mmengine
    checkpoint's message hub holds numpy arrays and scalars)."""
    path = str(tmp_path / 'ckpt.pth')
    _checkpoint_with_tensors_and_history(path)
    torch.save(dict(torch.load(path, weights_only=False),
                    extra=dict(array=np.arange(3.0), scalar=np.float64(2))),
               path)
    assert _as_other_numpy(path)
    ckpt = safe_load(path)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 1.0
    np.testing.assert_array_equal(ckpt['extra']['array'], [0., 1., 2.])
    assert ckpt['extra']['scalar'] == 2.0


def test_safe_load_refuses_code_either_way(tmp_path, loader_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Evil()}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)
    raw = str(tmp_path / 'evil.pkl')
    with open(raw, 'wb') as f:
        pickle.dump({'x': _Evil()}, f)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(raw)


class _Sneaky:
    """Reaches private attributes of an allow-listed class via getattr."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_restricted_getattr_reads_public_names_only(tmp_path, loader_path):
    path = str(tmp_path / 'sneaky.pth')
    torch.save({'x': _Sneaky()}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))
