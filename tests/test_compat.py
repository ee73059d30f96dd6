"""The torch 2.x shim for mmrazor: patches only what is missing."""
import types

import pytest
import torch

from fgd_mmrazor import compat


def test_mmrazor_imports_and_registers():
    import mmrazor.models  # noqa: F401
    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules(False)
    assert MODELS.get('FGDDistill') is not None
    assert MODELS.get('ImitationMaskLoss') is not None


def test_patched_names_on_this_torch():
    from torch.ao.quantization import fuser_method_mappings as fmm
    assert hasattr(fmm, 'reverse2') and hasattr(fmm, 'reverse3')
    assert hasattr(fmm, 'reverse_sequential_wrapper2')
    if int(torch.__version__.split('.')[0]) >= 2:
        # first application (at import) added what torch 2.x lacks
        assert compat.apply() == []  # idempotent: nothing left to add


def test_reverse_sequential_wrapper2_semantics():
    fuse = compat._reverse_sequential_wrapper2(lambda a, b: (a, b))
    assert fuse(False, 'x1', 'x2') == ('x2', 'x1')


def test_noop_where_names_exist(monkeypatch):
    """On torch 1.13 every name exists: apply() changes nothing."""
    from torch.ao.quantization import fuser_method_mappings as real_fmm
    from torch.ao.quantization.backend_config import BackendPatternConfig

    fake = types.SimpleNamespace(
        reverse2=object(), reverse3=object(),
        reverse_sequential_wrapper2=object(), _reverse2=object())
    before = dict(vars(fake))
    monkeypatch.setattr(
        'torch.ao.quantization.fuser_method_mappings', fake, raising=False)
    import sys
    monkeypatch.setitem(sys.modules,
                        'torch.ao.quantization.fuser_method_mappings', fake)
    monkeypatch.setattr(torch.ao.quantization, 'fuser_method_mappings',
                        fake)
    # BackendPatternConfig already has the setters after the first apply()
    assert all(hasattr(BackendPatternConfig, n) for n in compat._BPC_SETTERS)
    assert compat.apply() == []
    assert vars(fake) == before
    assert real_fmm is not fake


def test_patches_where_missing(monkeypatch):
    """On torch 2.x the names are added (simulated on fresh stand-ins)."""
    fake = types.SimpleNamespace(_reverse2='r2', _reverse3='r3')
    import sys
    monkeypatch.setitem(sys.modules,
                        'torch.ao.quantization.fuser_method_mappings', fake)
    monkeypatch.setattr(torch.ao.quantization, 'fuser_method_mappings',
                        fake)

    class FakeBPC:
        pass

    import torch.ao.quantization.backend_config as bc
    monkeypatch.setattr(bc, 'BackendPatternConfig', FakeBPC)
    added = compat.apply()
    assert fake.reverse2 == 'r2' and fake.reverse3 == 'r3'
    assert callable(fake.reverse_sequential_wrapper2)
    assert set(added) == {
        'fuser_method_mappings.reverse2', 'fuser_method_mappings.reverse3',
        'fuser_method_mappings.reverse_sequential_wrapper2',
        *(f'BackendPatternConfig.{n}' for n in compat._BPC_SETTERS)
    }
    cfg = FakeBPC()
    assert cfg._set_input_output_observed(True) is cfg
    assert cfg._input_output_observed is True


@pytest.mark.skipif(
    int(torch.__version__.split('.')[0]) < 2, reason='torch 2.x only')
def test_torch2_really_lacks_the_names():
    """On torch 2.x the public names are the shim's aliases."""
    from torch.ao.quantization import fuser_method_mappings as fmm
    assert fmm.reverse2 is fmm._reverse2
    assert fmm.reverse_sequential_wrapper2.__module__ == compat.__name__
