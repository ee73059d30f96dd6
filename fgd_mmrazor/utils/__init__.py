"""Utilities."""
from .checkpoint import (ALLOWED_GLOBALS, UnsafeCheckpointError,
                         load_teacher_checkpoint, register_checkpoint_loader,
                         safe_load)
from .diagnostics import explained_variance, linear_probe_explained_variance
from .export import export_student, student_state_dict
from .flops import conv_flops, masked_conv_flops

__all__ = [
    'ALLOWED_GLOBALS', 'UnsafeCheckpointError', 'load_teacher_checkpoint',
    'register_checkpoint_loader', 'safe_load', 'export_student',
    'student_state_dict', 'explained_variance',
    'linear_probe_explained_variance', 'conv_flops', 'masked_conv_flops'
]
