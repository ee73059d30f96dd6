"""Command-line config helpers: a GPU that torch cannot use is reported."""
import warnings

import pytest
import torch

from fgd_mmrazor.engine import cli_config


def test_a_gpu_torch_cannot_use_is_reported(monkeypatch):
    monkeypatch.setattr(cli_config, '_machine_has_nvidia_gpu', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.version, 'cuda', None)
    with pytest.warns(RuntimeWarning, match='CPU-only build.*runs on the CPU'):
        assert cli_config.warn_if_gpu_unused()
    monkeypatch.setattr(torch.version, 'cuda', '12.8')
    with pytest.warns(RuntimeWarning, match='CUDA 12.8 build that does not '
                      'see it'):
        assert cli_config.warn_if_gpu_unused()


def test_no_warning_without_a_gpu_or_when_torch_uses_it(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        monkeypatch.setattr(cli_config, '_machine_has_nvidia_gpu',
                            lambda: False)
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
        assert not cli_config.warn_if_gpu_unused()
        monkeypatch.setattr(cli_config, '_machine_has_nvidia_gpu',
                            lambda: True)
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        assert not cli_config.warn_if_gpu_unused()


def test_cpu_only_mmcv_ops_on_a_gpu_stop_the_run(monkeypatch):
    from mmcv import ops
    if ops.get_compiling_cuda_version() not in (None, 'not available'):
        pytest.skip('this mmcv has CUDA ops')
    cli_config.check_mmcv_cuda_ops()  # no GPU: nothing to check
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with pytest.raises(RuntimeError, match='without CUDA ops'):
        cli_config.check_mmcv_cuda_ops()
