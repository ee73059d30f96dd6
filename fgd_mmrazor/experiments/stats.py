"""Seed statistics: the mean and its standard error, paired differences.

The standard error of the mean, ``stdev / sqrt(n)`` (``stdev`` with
``n - 1``), says how far a mean is from zero in units of its own
seed-to-seed noise (a 95% interval spans the mean +- 4.3 of them at 3
seeds, +- 2.8 at 5, +- 2.2 at 12: Student's t).
"""
import itertools
import math
import statistics
from typing import Dict, Hashable, Mapping, Sequence

import numpy as np

__all__ = [
    'mean_se', 'paired_difference', 'format_mean_se', 'sign_flip_p',
    'pooled_difference'
]


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


def sign_flip_p(differences: Sequence[float],
                exact_up_to: int = 20,
                samples: int = 200_000,
                seed: int = 0) -> float:
    """Two-sided p-value of the paired differences under the null that
    each difference's sign is a fair coin (a sign-flip permutation test of
    their mean).

    Exact (all ``2^n`` sign patterns) for ``n <= exact_up_to``, else from
    ``samples`` random patterns (with the observed one counted). The
    p-value is the fraction of patterns whose absolute mean is at least
    the observed one's (ties included).
    """
    d = np.asarray([float(v) for v in differences], dtype=np.float64)
    n = len(d)
    if n == 0:
        return float('nan')
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= exact_up_to:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(signs @ d) / n
        return float(np.mean(means >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(samples, n))
    means = np.abs(signs @ d) / n
    return float((np.sum(means >= observed - tol) + 1) / (samples + 1))


def pooled_difference(values: Mapping[Hashable, float],
                      baseline: Mapping[Hashable, float]) -> Dict:
    """The paired differences ``values[k] - baseline[k]`` over the keys
    both have (e.g. ``(fold, seed)`` pairs): :func:`mean_se`, the pairs
    ahead (``ahead`` of ``n``), the sign-flip p-value (``p``) and the keys
    (``pairs``)."""
    keys = sorted(set(values) & set(baseline), key=str)
    diffs = [values[k] - baseline[k] for k in keys]
    out = mean_se(diffs)
    out.update(ahead=sum(d > 0 for d in diffs), p=sign_flip_p(diffs),
               pairs=[list(k) if isinstance(k, tuple) else k for k in keys])
    return out
