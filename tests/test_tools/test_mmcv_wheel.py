"""tools/mmcv_wheel.py: the mmcv wheel cache is keyed by torch, CUDA and
arch list, a CPU wheel is never taken for a CUDA torch, and the post-install
check refuses mmcv ops that do not fit the torch."""
import importlib.util
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from ..conftest import REPO

spec = importlib.util.spec_from_file_location(
    'mmcv_wheel', osp.join(REPO, 'tools', 'mmcv_wheel.py'))
mmcv_wheel = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mmcv_wheel)


def fake_torch(version, cuda=None, capabilities=()):
    """What the tool reads of torch: its version, CUDA version and GPUs;
    tensors are real."""
    return SimpleNamespace(
        __version__=version,
        __file__=torch.__file__,
        version=SimpleNamespace(cuda=cuda),
        tensor=torch.tensor,
        cuda=SimpleNamespace(
            is_available=lambda: bool(capabilities),
            device_count=lambda: len(capabilities),
            get_device_capability=lambda i: capabilities[i]))


CPU = fake_torch('2.13.0+cpu')
CUDA_NO_GPU = fake_torch('2.11.0+cu130', cuda='13.0')
CUDA_TWO_GPUS = fake_torch('2.11.0+cu130', cuda='13.0',
                           capabilities=[(9, 0), (8, 0), (9, 0)])


def test_cache_key_names_torch_cuda_and_archs():
    assert mmcv_wheel.cache_key(CPU, env={}) == 'torch2.13.0_cpu-cpu'
    assert mmcv_wheel.cache_key(CUDA_TWO_GPUS, env={}) == \
        'torch2.11.0_cu130-cu13.0-sm80_90'
    env = {'TORCH_CUDA_ARCH_LIST': '9.0'}
    assert mmcv_wheel.cache_key(CUDA_NO_GPU, env=env) == \
        'torch2.11.0_cu130-cu13.0-sm90'
    # the given list wins over the visible GPUs, in a canonical order
    env = {'TORCH_CUDA_ARCH_LIST': '9.0 8.6;8.6'}
    assert mmcv_wheel.arch_list(CUDA_TWO_GPUS, env=env) == '8.6;9.0'
    assert mmcv_wheel.cache_key(fake_torch('2.13.0', cuda='12.8'),
                                env={'TORCH_CUDA_ARCH_LIST': '8.0'}) == \
        'torch2.13.0-cu12.8-sm80'


def test_which_ops_are_built():
    assert mmcv_wheel.ops_mode(CPU, env={}) == 'cpu'
    assert mmcv_wheel.ops_mode(CUDA_TWO_GPUS, env={}) == 'cuda'
    assert mmcv_wheel.ops_mode(
        CUDA_NO_GPU, env={'TORCH_CUDA_ARCH_LIST': '9.0'}) == 'cuda'
    # a CUDA torch on a machine without a GPU (PyPI's torch on a CPU
    # machine): CPU ops, in a folder of their own
    assert mmcv_wheel.ops_mode(CUDA_NO_GPU, env={}) == 'cpu'
    assert mmcv_wheel.cache_key(CUDA_NO_GPU, env={}) == \
        'torch2.11.0_cu130-cpu'
    assert mmcv_wheel.ops_mode(CUDA_TWO_GPUS,
                               env={'FGD_MMCV_OPS': 'cpu'}) == 'cpu'
    with pytest.raises(RuntimeError, match='needs a CUDA build'):
        mmcv_wheel.ops_mode(CPU, env={'FGD_MMCV_OPS': 'cuda'})
    with pytest.raises(RuntimeError, match='must be one of'):
        mmcv_wheel.ops_mode(CPU, env={'FGD_MMCV_OPS': 'gpu'})


def test_cuda_ops_without_gpu_or_arch_list_are_refused():
    with pytest.raises(RuntimeError, match='TORCH_CUDA_ARCH_LIST'):
        mmcv_wheel.cache_key(CUDA_NO_GPU, env={'FGD_MMCV_OPS': 'cuda'})


def test_a_cpu_wheel_is_not_reused_for_cuda_ops(tmp_path):
    root = str(tmp_path)
    cpu_dir = mmcv_wheel.cache_dir(root, CPU, env={})
    os.makedirs(cpu_dir)
    wheel = osp.join(cpu_dir, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl')
    open(wheel, 'w').close()
    # an unkeyed wheel at the root (the old layout) is not looked at either
    stale = osp.join(root, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl')
    open(stale, 'w').close()
    assert mmcv_wheel.find_wheel(root, CPU, env={}) == wheel
    env = {'TORCH_CUDA_ARCH_LIST': '9.0'}
    assert mmcv_wheel.find_wheel(root, CUDA_NO_GPU, env=env) is None
    assert mmcv_wheel.find_wheel(root, CUDA_TWO_GPUS, env={}) is None
    # another torch version, CPU too: not reused (undefined symbols)
    assert mmcv_wheel.find_wheel(root, fake_torch('2.12.0+cpu'),
                                 env={}) is None
    # CPU ops built beside a CUDA torch on a GPU-less machine are not
    # reused once a GPU is visible
    cpu_ops = mmcv_wheel.cache_dir(root, CUDA_NO_GPU, env={})
    os.makedirs(cpu_ops)
    open(osp.join(cpu_ops, osp.basename(wheel)), 'w').close()
    assert mmcv_wheel.find_wheel(root, CUDA_NO_GPU, env={}) is not None
    assert mmcv_wheel.find_wheel(
        root, fake_torch('2.11.0+cu130', cuda='13.0',
                         capabilities=[(9, 0)]), env={}) is None


def test_check_refuses_cpu_ops_where_cuda_ops_are_wanted():
    from mmcv import ops
    if ops.get_compiling_cuda_version() not in (None, 'not available'):
        pytest.skip('this mmcv has CUDA ops')
    assert 'CPU' in mmcv_wheel.check(CPU, env={})  # NMS runs on the CPU
    # a CUDA torch without a GPU: CPU ops are what was asked for
    assert 'CPU only' in mmcv_wheel.check(CUDA_NO_GPU, env={})
    with pytest.raises(RuntimeError, match='without CUDA ops'):
        mmcv_wheel.check(CUDA_NO_GPU, env={'FGD_MMCV_OPS': 'cuda',
                                           'TORCH_CUDA_ARCH_LIST': '9.0'})
    with pytest.raises(RuntimeError, match='without CUDA ops'):
        mmcv_wheel.check(CUDA_TWO_GPUS, env={})


def test_thc_include_is_replaced_only_when_torch_lacks_it(tmp_path):
    src = tmp_path / 'mmcv-2.1.0'
    csrc = src / 'mmcv' / 'ops' / 'csrc' / 'common'
    csrc.mkdir(parents=True)
    helper = csrc / 'pytorch_cuda_helper.hpp'
    helper.write_text(
        '#include <ATen/ATen.h>\n#include <THC/THCAtomics.cuh>\n')
    torch_dir = tmp_path / 'torch'
    (torch_dir / 'include' / 'THC').mkdir(parents=True)
    (torch_dir / 'include' / 'THC' / 'THCAtomics.cuh').write_text('')
    with_thc = SimpleNamespace(__file__=str(torch_dir / '__init__.py'))
    assert mmcv_wheel.fix_sources(str(src), with_thc) == []
    assert '<THC/THCAtomics.cuh>' in helper.read_text()
    without = SimpleNamespace(__file__=str(tmp_path / 'bare' / 'x.py'))
    assert mmcv_wheel.fix_sources(str(src), without) == [str(helper)]
    text = helper.read_text()
    assert '<ATen/cuda/Atomic.cuh>' in text and 'THC' not in text
