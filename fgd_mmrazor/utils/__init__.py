"""Utilities."""
from .checkpoint import (SAFE_GLOBALS, UnsafeCheckpointError,
                         load_teacher_checkpoint, register_checkpoint_loader,
                         safe_load)

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'load_teacher_checkpoint',
    'register_checkpoint_loader', 'safe_load'
]
