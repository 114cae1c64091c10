"""Quantiles (latency p95) and their distribution-free confidence intervals.

For the q-quantile of n observations, the order statistics with 1-based ranks
``l = B^{-1}(alpha/2)`` and ``u = B^{-1}(1 - alpha/2) + 1`` of ``B = Binomial(n, q)``
bracket the true quantile with probability at least ``1 - alpha`` (e.g. Hahn & Meeker,
"Statistical Intervals", 1991, section 5.2). From raw values they are read off directly
(matching ``scipy.stats.quantile_test(...).confidence_interval()``); from a summed
fixed-bucket histogram they are interpolated inside their buckets.

For tests on a ratio of quantiles the standard error of ``ln(quantile)`` is taken from
that interval: ``se = (ln high - ln low) / (2 z_{1-alpha/2})``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.histograms import hist_quantile
from experiments.stats.means import check_alpha
from experiments.stats.results import AsDict


@dataclass(frozen=True)
class QuantileEstimate(AsDict):
    q: float
    n: int
    estimate: float
    ci_low: float | None
    ci_high: float | None
    log_standard_error: float | None
    alpha: float
    method: str


def _check_q(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
        raise StatsInputError(f"q must be strictly between 0 and 1, got {q!r}")
    return float(q)


def quantile_rank_bounds(n: int, q: float, alpha: float) -> tuple[int, int]:
    """1-based ranks ``(l, u)`` of the order statistics bracketing the q-quantile with
    probability >= 1 - alpha; ``l`` may be 0 and ``u`` may exceed n (unbounded side)."""
    distribution = scipy_stats.binom(n, q)
    return int(distribution.ppf(alpha / 2)), int(distribution.isf(alpha / 2)) + 1


def _log_se(low: float | None, high: float | None, alpha: float) -> float | None:
    if low is None or high is None or low <= 0 or high <= 0:
        return None
    return (math.log(high) - math.log(low)) / (2 * float(scipy_stats.norm.ppf(1 - alpha / 2)))


def quantile_ci(values: Sequence[float], q: float, *, alpha: float = 0.05) -> QuantileEstimate:
    """The empirical q-quantile of raw values (numpy's default linear interpolation) with
    the distribution-free order-statistic interval (None on an unbounded side)."""
    q = _check_q(q)
    alpha = check_alpha(alpha)
    data = np.sort(np.asarray(values, dtype=float))
    if data.ndim != 1 or data.size == 0 or not np.all(np.isfinite(data)):
        raise StatsInputError("values must be a non-empty list of finite numbers")
    n = int(data.size)
    low_rank, high_rank = quantile_rank_bounds(n, q, alpha)
    low = float(data[low_rank - 1]) if low_rank >= 1 else None
    high = float(data[high_rank - 1]) if high_rank <= n else None
    return QuantileEstimate(
        q=q,
        n=n,
        estimate=float(np.quantile(data, q)),
        ci_low=low,
        ci_high=high,
        log_standard_error=_log_se(low, high, alpha),
        alpha=alpha,
        method="order statistics",
    )


def histogram_quantile_ci(
    counts: Sequence[int], edges: Sequence[float], q: float, *, top: float, alpha: float = 0.05
) -> QuantileEstimate | None:
    """The q-quantile of a fixed-bucket histogram and its order-statistic interval, the
    ranks ``r`` mapped to values by linear interpolation inside their bucket
    (``hist_quantile(counts, edges, r / n)``). None for an empty histogram."""
    q = _check_q(q)
    alpha = check_alpha(alpha)
    n = int(sum(counts))
    if n == 0:
        return None
    estimate = hist_quantile(counts, edges, q, top=top)
    low_rank, high_rank = quantile_rank_bounds(n, q, alpha)
    low = hist_quantile(counts, edges, low_rank / n, top=top) if low_rank >= 1 else None
    high = hist_quantile(counts, edges, high_rank / n, top=top) if high_rank <= n else None
    # The smallest positive edge stands in for a lower bound of 0 (a sub-bucket value).
    if low is not None and low <= 0:
        low = min(edge for edge in edges if edge > 0) / 2
    return QuantileEstimate(
        q=q,
        n=n,
        estimate=float(estimate),
        ci_low=low,
        ci_high=high,
        log_standard_error=_log_se(low, high, alpha),
        alpha=alpha,
        method="histogram order statistics",
    )
