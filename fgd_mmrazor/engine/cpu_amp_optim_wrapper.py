"""Mixed precision on CPU: bfloat16 autocast without loss scaling.

mmengine's ``AmpOptimWrapper`` refuses to run without a GPU (it asserts
CUDA/NPU/MLU/MUSA). On CPU, autocast runs in bfloat16, which has fp32's
exponent range and needs no loss scale, so the wrapper only has to enter
``torch.autocast('cpu', torch.bfloat16)`` around the forward. ``--amp`` in
``tools/train.py`` selects it when no GPU is available (GPU runs keep
mmengine's ``AmpOptimWrapper``, fp16 with dynamic loss scaling).

The imitation mask and ``ImitationMaskLoss`` compute in fp32 whatever the
feature dtype.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

__all__ = ['CPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to bfloat16 on CPU.

    Args:
        dtype (str): Autocast dtype, 'bfloat16' (default) or 'float16'.
        **kwargs: ``OptimWrapper`` arguments.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
