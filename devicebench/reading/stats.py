"""The statistics of the suite, in one place: quartiles, a median's interval, shifts and rank tests, Holm.

Everything here is distribution-free where it can be (order statistics, the Mann-Whitney
distribution) and says so where it is not (:func:`t_shift`, for one run a side against the
run-to-run spread of stored history). Inputs are plain lists of floats; nothing here knows
about runs or benchmarks.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Above this many pairs the rank statistic's exact distribution is replaced by its normal
# approximation (and the computation stays within milliseconds for any input).
EXACT_PAIRS = 2500


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(q1, median, q3), inclusive quartiles; one value is all three."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median: two order statistics (the sign test inverted).

    None with too few values for the confidence asked (fewer than 6 for 95%).
    """
    ranks = median_ci_ranks(len(values), confidence)
    if ranks is None:
        return None
    ordered = sorted(values)
    return ordered[ranks[0]], ordered[ranks[1]]


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """The (0-based) positions in ``n`` sorted values of the median's interval, or None (too few).

    Exact for every ``n``: ``[x_(k), x_(n-k+1)]`` with k the smallest j where P(B <= j) >
    alpha/2, B ~ Binomial(n, 1/2), found from the normal approximation and a few steps of
    SciPy's binomial distribution function. A few microseconds for a new ``n``: adaptive
    rounds ask after every round, inside the round when the step is looped.
    """
    from scipy.special import bdtr

    tail = (1 - confidence) / 2
    k = max(0, math.floor(n / 2 - 0.5 * _z(1 - tail) * math.sqrt(n)))
    while k > 0 and bdtr(k - 1, n, 0.5) > tail:
        k -= 1
    while k < n and bdtr(k, n, 0.5) <= tail:
        k += 1
    return (k - 1, n - k) if k > 0 else None


def _z(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


@lru_cache(maxsize=4096)  # a long history tests thousands of segment pairs
def _u_distribution(n: int, m: int) -> np.ndarray:
    """P(U = u), u = 0..n*m, of the Mann-Whitney statistic for samples of n and m without ties."""
    # counts[j][u]: ways for i of the first sample and j of the second to give U = u, built over i.
    previous = [np.zeros(n * m + 1) for _ in range(m + 1)]
    for j in range(m + 1):
        previous[j][0] = 1.0  # i = 0: U = 0, one way
    for i in range(1, n + 1):
        current = [np.zeros(n * m + 1) for _ in range(m + 1)]
        current[0][0] = 1.0
        for j in range(1, m + 1):
            # The largest of the i + j values is from the first sample (it beats all j of the
            # second: U grows by j) or from the second (U unchanged).
            current[j][j:] += previous[j][: n * m + 1 - j]
            current[j] += current[j - 1]
        previous = current
    counts = previous[m]
    return counts / counts.sum()


def _u_statistic(x: list[float], y: list[float]) -> float:
    """Pairs (x_i, y_j) with y_j > x_i, ties counted half."""
    xs = np.asarray(x)
    ys = np.asarray(y)
    greater = (ys[None, :] > xs[:, None]).sum()
    ties = (ys[None, :] == xs[:, None]).sum()
    return float(greater + 0.5 * ties)


def rank_p_greater(x: list[float], y: list[float], shift: float = 0.0) -> float:
    """One-sided p that ``y - shift`` tends to exceed ``x`` (Mann-Whitney; exact for small samples)."""
    return _p_of_u(_u_statistic(x, [v - shift for v in y]), len(x), len(y))


def _p_of_u(u: float, n: int, m: int) -> float:
    """P(U >= u) for samples of n and m."""
    if n * m <= EXACT_PAIRS:
        dist = _u_distribution(n, m)
        return float(min(1.0, dist[math.ceil(u - 1e-9) :].sum()))
    mean, sd = n * m / 2, math.sqrt(n * m * (n + m + 1) / 12)
    return 1 - statistics.NormalDist().cdf((u - 0.5 - mean) / sd)


def min_rank_p(n: int, m: int) -> float:
    """The smallest one-sided p a rank test of n against m values can give."""
    return 1 / math.comb(n + m, n)


@dataclass(frozen=True)
class Shift:
    """How far ``y`` lies from ``x``: an estimate, its interval, and one-sided p-values past a margin."""

    estimate: float
    low: float
    high: float
    p_greater: float  # one-sided evidence that y lies above x
    p_less: float  # one-sided evidence that y lies below x
    method: str


def hodges_lehmann(x: list[float], y: list[float], confidence: float = 0.95) -> Shift:
    """The Hodges-Lehmann shift of ``y`` from ``x`` (the median of all differences y_j - x_i),
    its distribution-free interval (Moses'), and one-sided Mann-Whitney p-values of a shift
    either way. Needs at least 2 values a side."""
    n, m = len(x), len(y)
    diffs = (np.asarray(y, dtype=float)[None, :] - np.asarray(x, dtype=float)[:, None]).ravel()
    alpha = 1 - confidence
    if n * m <= EXACT_PAIRS:
        cdf = np.cumsum(_u_distribution(n, m))
        k = int(np.searchsorted(cdf, alpha / 2, side="right"))  # P(U <= k - 1) <= alpha / 2
    else:
        k = max(0, math.floor(n * m / 2 - _z(1 - alpha / 2) * math.sqrt(n * m * (n + m + 1) / 12)))
    k = min(k, (n * m + 1) // 2)
    # Moses' limits: the k-th smallest and the k-th largest difference (1-based), the shifts at
    # which the two-sided rank test at this confidence stops rejecting.
    # Only the order statistics needed are put in place (a long history tests thousands of segments).
    ranks = sorted({k - 1, n * m - k} if k > 0 else {0, n * m - 1}) + sorted({(n * m - 1) // 2, n * m // 2})
    placed = np.partition(diffs, ranks)
    low, high = (float(placed[k - 1]), float(placed[n * m - k])) if k > 0 else (float(placed[0]), float(placed[-1]))
    middle = float((placed[(n * m - 1) // 2] + placed[n * m // 2]) / 2)  # the median, as np.median finds it
    # The rank statistics from the same differences (y_j - x_i > 0 exactly when y_j > x_i).
    ties = int(np.count_nonzero(diffs == 0))
    p_greater = _p_of_u(float(np.count_nonzero(diffs > 0) + 0.5 * ties), n, m)
    p_less = _p_of_u(float(np.count_nonzero(diffs < 0) + 0.5 * ties), n, m)
    return Shift(middle, low, high, p_greater, p_less, "Hodges-Lehmann, Mann-Whitney")


def t_shift(x: list[float], y: list[float], spread: float, df: int, confidence: float = 0.95) -> Shift:
    """The difference of means of ``y`` and ``x`` against a spread known from elsewhere.

    ``spread`` is the standard deviation of one value (here: of one run's log median, from
    stored history of the same machine and software), estimated with ``df`` degrees of
    freedom; the interval and p-values are Student's t. This assumes the spread of the
    values compared is the spread of that history: it is not distribution-free, and its
    error rates are the ones measured (README), not guaranteed.
    """
    # Student's t through scipy's special functions: the same numbers as scipy.stats.t, without
    # its per-call overhead (a report makes thousands of these).
    from scipy.special import stdtr, stdtrit

    d = statistics.fmean(y) - statistics.fmean(x)
    se = spread * math.sqrt(1 / len(x) + 1 / len(y))
    half = float(stdtrit(df, 1 - (1 - confidence) / 2)) * se
    if se == 0:
        return Shift(d, d, d, 0.0 if d > 0 else 1.0, 0.0 if d < 0 else 1.0, "t over history")
    p_greater = float(stdtr(df, -d / se))
    p_less = float(stdtr(df, d / se))
    return Shift(d, d - half, d + half, p_greater, p_less, "t over history")


def pooled_sd(groups: list[list[float]]) -> tuple[float, int]:
    """The standard deviation within groups, pooled, and its degrees of freedom."""
    squares, df = 0.0, 0
    for group in groups:
        if len(group) >= 2:
            mean = statistics.fmean(group)
            squares += sum((v - mean) ** 2 for v in group)
            df += len(group) - 1
    return (math.sqrt(squares / df) if df else 0.0), df


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: reject the family's hypotheses with adjusted p < alpha and the
    chance of any false rejection stays at most alpha, whatever the dependence between them."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def runs_needed(spread: float, change: float, margin: float, alpha: float, power: float = 0.9) -> int | None:
    """Runs a side for a rank test to find a ``change`` beyond ``margin`` (both on the log scale)
    at this run-to-run ``spread``, with the given power; None when the change does not exceed
    the margin (then no number of runs will call it a regression)."""
    if change <= margin:
        return None
    # Normal-theory size, inflated by 1/0.955 for the rank test's efficiency, and no fewer
    # runs than the rank test needs to reach alpha at all.
    n = 2 * ((_z(1 - alpha) + _z(power)) * spread / (change - margin)) ** 2 / 0.955
    least = next(k for k in range(2, 200) if min_rank_p(k, k) < alpha)
    return max(least, math.ceil(n))
