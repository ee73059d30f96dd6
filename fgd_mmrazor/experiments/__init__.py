"""Experiments over training runs: the method comparison, its runs and
its statistics (library code of ``tools/compare_methods.py``)."""
from .stats import format_mean_se, mean_se, paired_difference

__all__ = ['mean_se', 'paired_difference', 'format_mean_se']
