"""Analyses of a distillation setup that tools print (no training loop)."""
from .teacher_check import check_teacher, format_report

__all__ = ['check_teacher', 'format_report']
