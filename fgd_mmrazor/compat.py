"""Make mmrazor 1.0.0 importable on torch >= 2.0.

Why this module exists
----------------------
mmrazor 1.0.0 (the last release) builds its quantization backend configs at
import time with torch 1.13 APIs that torch 2.x renamed or removed:

* ``torch.ao.quantization.fuser_method_mappings.reverse2`` / ``reverse3``
  became private (``_reverse2`` / ``_reverse3``), and
  ``reverse_sequential_wrapper2`` was removed;
* ``BackendPatternConfig._set_input_output_observed``,
  ``_set_overwrite_output_fake_quantize`` and
  ``_set_overwrite_output_observer`` were removed.

Without them ``import mmrazor.models`` fails even though this project uses
none of mmrazor's quantization code. :func:`apply` restores those names (the
public aliases and small setters that only store their argument), which is
all mmrazor needs to import. It touches only names that are missing, so it
is a no-op on torch 1.13, where the reference stack runs unpatched, and it is
idempotent. It must run before the first ``import mmrazor``;
``fgd_mmrazor/__init__.py`` calls it first thing.
"""
from typing import List

__all__ = ['apply', 'patched_names']

_BPC_SETTERS = ('_set_input_output_observed',
                '_set_overwrite_output_fake_quantize',
                '_set_overwrite_output_observer')

# Names patched by the last call of :func:`apply` (for tests and logs).
patched_names: List[str] = []


def _reverse_sequential_wrapper2(sequential):
    """torch 1.13's ``reverse_sequential_wrapper2``: fuse ``(x2, x1)``."""

    def fuser_method(is_qat, x1, x2):
        return sequential(x2, x1)

    return fuser_method


def _make_setter(name: str):
    attr = name[len('_set'):]  # e.g. '_input_output_observed'

    def setter(self, value):
        setattr(self, attr, value)
        return self

    setter.__name__ = name
    return setter


def apply() -> List[str]:
    """Add the torch 1.13 names mmrazor 1.0.0 imports, where missing.

    Returns:
        list[str]: The names that were added (empty when nothing was needed).
    """
    added = []
    try:
        from torch.ao.quantization import fuser_method_mappings as fmm
        from torch.ao.quantization.backend_config import BackendPatternConfig
    except ImportError:  # torch < 1.13: mmrazor uses its placeholders
        patched_names[:] = added
        return added

    # BackendConfig looks up this submodule as an attribute, which torch 2.x
    # no longer imports with its package.
    import torch.ao.quantization.backend_config.utils  # noqa: F401

    for public, private in (('reverse2', '_reverse2'),
                            ('reverse3', '_reverse3')):
        if not hasattr(fmm, public) and hasattr(fmm, private):
            setattr(fmm, public, getattr(fmm, private))
            added.append(f'fuser_method_mappings.{public}')
    if not hasattr(fmm, 'reverse_sequential_wrapper2'):
        fmm.reverse_sequential_wrapper2 = _reverse_sequential_wrapper2
        added.append('fuser_method_mappings.reverse_sequential_wrapper2')
    for name in _BPC_SETTERS:
        if not hasattr(BackendPatternConfig, name):
            setattr(BackendPatternConfig, name, _make_setter(name))
            added.append(f'BackendPatternConfig.{name}')
    patched_names[:] = added
    return added
