"""Paired tests for shadow-mode pairs: the same request answered by both arms.

Each pair gives a difference ``d = treatment - control``; the paired t-test works on the
sufficient statistics of the differences (so the database can sum them), Wilcoxon's
signed-rank test on the differences themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.means import check_alpha
from experiments.stats.results import AsDict
from experiments.stats.summaries import MeanStats

#: Up to this many non-zero differences (and no ties) the Wilcoxon p-value is exact.
EXACT_WILCOXON_MAX_N = 50


@dataclass(frozen=True)
class PairedTResult(AsDict):
    n: int
    mean_difference: float
    standard_error: float
    t_statistic: float
    degrees_of_freedom: int
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float


@dataclass(frozen=True)
class WilcoxonResult(AsDict):
    n: int
    n_nonzero: int
    statistic: float
    p_value: float
    method: str


def paired_t_test(differences: MeanStats, *, alpha: float = 0.05) -> PairedTResult:
    """Paired t-test from the differences' ``(n, sum, sum_squares)``:
    ``dbar = sum / n``, ``se = s_d / sqrt(n)``, ``t = dbar / se`` with ``n - 1`` degrees of
    freedom, ``p = 2 P(T > |t|)``, interval ``dbar +- t_{1-alpha/2} se``. Matches
    ``scipy.stats.ttest_rel``. With all differences equal: p = 1 if they are 0, else 0."""
    if not isinstance(differences, MeanStats) or differences.n < 2:
        raise StatsInputError(
            f"differences must be MeanStats with n >= 2 pairs, got {differences!r}"
        )
    alpha = check_alpha(alpha)
    n = differences.n
    mean = differences.mean
    se = (differences.variance / n) ** 0.5
    df = n - 1
    if se == 0:
        t = 0.0 if mean == 0 else float(np.sign(mean)) * 1e308
        p = 1.0 if mean == 0 else 0.0
        half = 0.0
    else:
        t = mean / se
        p = float(2 * scipy_stats.t.sf(abs(t), df))
        half = float(scipy_stats.t.ppf(1 - alpha / 2, df)) * se
    return PairedTResult(n, mean, se, t, df, p, mean - half, mean + half, alpha)


def wilcoxon_signed_rank(differences: Sequence[float]) -> WilcoxonResult:
    """Wilcoxon's signed-rank test of ``median(d) = 0`` (zero differences dropped,
    Pratt's variant not used): ``W = min(W+, W-)`` over ranks of ``|d|``; the exact
    distribution for at most 50 non-zero differences without ties, the normal approximation with tie
    correction otherwise (``scipy.stats.wilcoxon``)."""
    data = np.asarray(list(differences), dtype=float)
    if data.ndim != 1 or not np.all(np.isfinite(data)):
        raise StatsInputError("differences must be a list of finite numbers")
    nonzero_values = data[data != 0]
    nonzero = int(nonzero_values.size)
    if nonzero < 1:
        raise StatsInputError("the Wilcoxon test needs at least one non-zero difference")
    tied = np.unique(np.abs(nonzero_values)).size < nonzero
    method = "exact" if nonzero <= EXACT_WILCOXON_MAX_N and not tied else "asymptotic"
    result = scipy_stats.wilcoxon(nonzero_values, correction=False, method=method)
    return WilcoxonResult(
        n=int(data.size),
        n_nonzero=nonzero,
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        method=method,
    )
