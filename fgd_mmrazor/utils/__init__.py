"""Utilities."""
from .checkpoint import (SAFE_GLOBALS, UnsafeCheckpointError,
                         load_teacher_checkpoint, register_safe_globals,
                         safe_load)

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'load_teacher_checkpoint',
    'register_safe_globals', 'safe_load'
]
