"""Paired statistics: the sign-flip p-value against cases counted by
hand, and the pooled (fold, seed) difference."""
import math

import pytest

from fgd_mmrazor.experiments.stats import pooled_difference, sign_flip_p


def test_sign_flip_p_counts_sign_patterns():
    # n = 3, all positive: of the 8 sign patterns only +++ and --- reach
    # the observed |mean|.
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    # 1, 1, -1: |mean| 1/3; every pattern has |mean| 1/3 or 1 -> p = 1.
    assert sign_flip_p([1.0, 1.0, -1.0]) == 1.0
    # 5 equal positive differences: 2 of 32 patterns.
    assert sign_flip_p([0.01] * 5) == pytest.approx(2 / 32)
    # 4 and a larger one of the other sign: patterns with |mean| >= 0.4
    # (sum >= 2): +-+++... counted by hand: 1+1+1+1-6 -> |sum| 2.
    d = [1.0, 1.0, 1.0, 1.0, -6.0]
    count = 0
    for mask in range(32):
        s = sum(v if mask >> i & 1 else -v for i, v in enumerate(d))
        count += abs(s) >= 2 - 1e-12
    assert sign_flip_p(d) == pytest.approx(count / 32)
    assert math.isnan(sign_flip_p([]))


def test_sign_flip_p_sampled_for_many_pairs():
    d = [0.002] * 30
    p = sign_flip_p(d, exact_up_to=20, samples=20000)
    # exact: 2 / 2^30; sampled: bounded below by 1 / (samples + 1)
    assert p == pytest.approx(1 / 20001)
    p = sign_flip_p([0.001, -0.001] * 15, exact_up_to=20, samples=20000)
    assert p == pytest.approx(1.0)


def test_pooled_difference_pairs_by_key():
    values = {(0, 8): 0.30, (0, 9): 0.32, (1, 8): 0.25, (1, 9): 0.20,
              (2, 8): 0.5}
    alone = {(0, 8): 0.29, (0, 9): 0.30, (1, 8): 0.26, (1, 9): 0.17}
    out = pooled_difference(values, alone)
    assert out['n'] == 4 and out['ahead'] == 3
    assert out['mean'] == pytest.approx((0.01 + 0.02 - 0.01 + 0.03) / 4)
    assert out['pairs'] == [[0, 8], [0, 9], [1, 8], [1, 9]]
    assert 0 < out['p'] <= 1
