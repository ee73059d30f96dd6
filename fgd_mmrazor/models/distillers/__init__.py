"""Distillers."""
from .fgd_distiller import FGDDistiller

__all__ = ['FGDDistiller']
