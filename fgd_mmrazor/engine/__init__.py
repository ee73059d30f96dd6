"""Engine components (hooks, optimizer wrappers)."""
from .adapter_warmup_hook import AdapterWarmupHook, student_grad_scale_at
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .distill_guard_hook import (DistillGuardHook, check_optimizer,
                                 guard_teacher)

__all__ = [
    'AdapterWarmupHook', 'CPUAmpOptimWrapper', 'DistillGuardHook',
    'check_optimizer', 'guard_teacher', 'student_grad_scale_at'
]
