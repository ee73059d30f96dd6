"""Distillation losses."""
from .imitation_mask_loss import ImitationMaskLoss

__all__ = ['ImitationMaskLoss']
