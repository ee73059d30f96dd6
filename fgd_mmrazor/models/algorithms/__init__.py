"""Distillation algorithms."""
from .fgd_distill import FGDDistill

__all__ = ['FGDDistill']
