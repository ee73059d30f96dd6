"""Engine components (hooks, optimizer wrappers)."""
from .adapter_warmup_hook import AdapterWarmupHook, student_grad_scale_at
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper

__all__ = ['AdapterWarmupHook', 'CPUAmpOptimWrapper', 'student_grad_scale_at']
