"""Seed statistics: the mean and its standard error, paired differences.

The standard error of the mean, ``stdev / sqrt(n)`` (``stdev`` with
``n - 1``), says how far a mean is from zero in units of its own
seed-to-seed noise (a 95% interval spans the mean +- 4.3 of them at 3
seeds, +- 2.8 at 5, +- 2.2 at 12: Student's t).
"""
import math
import statistics
from typing import Dict, Mapping, Sequence

__all__ = ['mean_se', 'paired_difference', 'format_mean_se']


def mean_se(values: Sequence[float]) -> Dict[str, float]:
    """``dict(mean, se, n)``; ``se`` is NaN for fewer than two values."""
    values = [float(v) for v in values]
    if not values:
        return dict(mean=float('nan'), se=float('nan'), n=0)
    se = statistics.stdev(values) / math.sqrt(len(values)) \
        if len(values) > 1 else float('nan')
    return dict(mean=statistics.mean(values), se=se, n=len(values))


def paired_difference(values: Mapping[int, float],
                      baseline: Mapping[int, float]) -> Dict[str, float]:
    """:func:`mean_se` of ``values[seed] - baseline[seed]`` over the seeds
    both have, with the seeds used (``seeds``)."""
    seeds = sorted(set(values) & set(baseline))
    out = mean_se([values[s] - baseline[s] for s in seeds])
    out['seeds'] = seeds
    return out


def format_mean_se(stat: Mapping[str, float], sign: bool = False,
                   digits: int = 4) -> str:
    """``0.1234 +- 0.0012``, or ``0.1234 (1 seed)`` without a s.e."""
    fmt = f'{{:{"+" if sign else ""}.{digits}f}}'
    mean = fmt.format(stat['mean'])
    if stat['n'] < 2:
        return f'{mean} ({stat["n"]} seed)'
    return f'{mean} +- {stat["se"]:.{digits}f}'
