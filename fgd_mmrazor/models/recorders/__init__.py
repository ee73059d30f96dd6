"""Recorders (registered in ``mmrazor.registry.TASK_UTILS``)."""
from .imitation_mask_recorder import ImitationMaskRecorder

__all__ = ['ImitationMaskRecorder']
