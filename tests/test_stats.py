"""devicebench.reading.stats against SciPy: its own versions exist for speed (adaptive rounds ask for a
median's interval after every round; a report makes thousands of tests), so SciPy is the oracle."""

import random

import pytest
from scipy.stats import binom, mannwhitneyu

from devicebench.reading import stats


def _binomial_ranks(n: int) -> tuple[int, int] | None:
    k = int(binom.ppf(0.025, n, 0.5))  # the smallest j with P(B <= j) >= 2.5%
    return (k - 1, n - k) if k > 0 else None


def test_the_medians_interval_is_the_binomials_exact_one_for_any_count():
    stats.median_ci_ranks.cache_clear()
    for n in [*range(1, 1500), 4999, 5000, 10**4, 10**5, 10**6]:
        assert stats.median_ci_ranks(n) == _binomial_ranks(n), n


def test_the_medians_interval_covers_at_least_95_percent():
    for n in (6, 7, 30, 500, 1001):
        low, high = stats.median_ci_ranks(n)
        # The median lies in [x_(low), x_(high)] (0-based) unless fewer than low + 1, or more
        # than high, of the n values fall below it: each value falls below it with chance 1/2.
        assert binom.cdf(high, n, 0.5) - binom.cdf(low, n, 0.5) >= 0.95


def test_the_rank_test_is_scipys_mann_whitney():
    rng = random.Random(7)
    for _ in range(500):
        n, m = rng.randint(1, 12), rng.randint(1, 12)
        x, y = [rng.random() for _ in range(n)], [rng.random() + rng.choice([0.0, 0.2]) for _ in range(m)]
        expected = mannwhitneyu(y, x, alternative="greater", method="exact").pvalue
        assert stats.rank_p_greater(x, y) == pytest.approx(expected, abs=1e-12)
        shifted = mannwhitneyu([v - 0.1 for v in y], x, alternative="greater", method="exact").pvalue
        assert stats.rank_p_greater(x, y, shift=0.1) == pytest.approx(shifted, abs=1e-12)
    # Past EXACT_PAIRS pairs: the normal approximation, with SciPy's continuity correction.
    x, y = [rng.random() for _ in range(60)], [rng.random() + 0.05 for _ in range(60)]
    assert stats.rank_p_greater(x, y) == pytest.approx(mannwhitneyu(y, x, alternative="greater", method="asymptotic").pvalue, rel=1e-9)


def test_the_shifts_interval_holds_the_rank_tests_confidence():
    # Moses' interval is the set of shifts a two-sided 95% rank test does not reject: just
    # inside either end SciPy's one-sided p is above 2.5%, just outside it is at most 2.5%.
    rng = random.Random(3)
    for n, m in ((7, 7), (5, 9), (12, 12)):
        x, y = [rng.random() for _ in range(n)], [rng.random() + 0.3 for _ in range(m)]
        shift = stats.hodges_lehmann(x, y)
        eps = 1e-9

        def p_above(delta):
            return mannwhitneyu([v - delta for v in y], x, alternative="greater", method="exact").pvalue

        def p_below(delta):
            return mannwhitneyu([v - delta for v in y], x, alternative="less", method="exact").pvalue

        assert p_above(shift.low + eps) > 0.025 and p_above(shift.low - eps) <= 0.025
        assert p_below(shift.high - eps) > 0.025 and p_below(shift.high + eps) <= 0.025
