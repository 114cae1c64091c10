"""Rates (escalation, error): intervals for one rate and tests for two.

- One rate: Wilson score interval; Clopper-Pearson (exact) when counts are small.
- Two rates: pooled two-proportion z-test, or Fisher's exact test when any expected cell
  of the 2x2 table is below 5; Newcombe's hybrid score interval (method 10) for the
  difference; the delta method for the relative lift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.means import check_alpha
from experiments.stats.results import AsDict
from experiments.stats.summaries import ProportionStats

#: Below this expected count in any cell of the 2x2 table, tests and intervals are exact.
SMALL_EXPECTED_COUNT = 5


@dataclass(frozen=True)
class RateInterval(AsDict):
    rate: float
    ci_low: float
    ci_high: float
    method: str
    alpha: float


@dataclass(frozen=True)
class ProportionDifference(AsDict):
    """Test of ``treatment.rate - control.rate``."""

    control_rate: float
    treatment_rate: float
    difference: float
    standard_error: float
    z_statistic: float
    p_value: float
    test: str
    ci_low: float
    ci_high: float
    ci_method: str
    relative_lift: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    alpha: float


def _z(alpha: float) -> float:
    return float(scipy_stats.norm.ppf(1 - alpha / 2))


def wilson_arrays(successes, n, alpha: float):
    """Wilson score interval, vectorised: with ``p = x / n`` and ``z = z_{1-alpha/2}``,
    ``centre = (p + z^2 / 2n) / (1 + z^2 / n)`` and
    ``half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)``. Returns (low, high).
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _z(alpha)
    p = x / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def wilson_interval(stats: ProportionStats, *, alpha: float = 0.05) -> RateInterval:
    """Wilson score interval for one rate (formula in :func:`wilson_arrays`); matches
    ``statsmodels.stats.proportion.proportion_confint(method="wilson")``."""
    _check_rate(stats, "stats")
    alpha = check_alpha(alpha)
    low, high = wilson_arrays(stats.successes, stats.n, alpha)
    return RateInterval(stats.rate, float(low), float(high), "wilson", alpha)


def clopper_pearson_interval(stats: ProportionStats, *, alpha: float = 0.05) -> RateInterval:
    """Exact (Clopper-Pearson) interval: ``[Beta_{alpha/2}(x, n-x+1), Beta_{1-alpha/2}(x+1, n-x)]``
    (0 when x = 0, 1 when x = n); matches ``proportion_confint(method="beta")``."""
    _check_rate(stats, "stats")
    alpha = check_alpha(alpha)
    x, n = stats.successes, stats.n
    low = 0.0 if x == 0 else float(scipy_stats.beta.ppf(alpha / 2, x, n - x + 1))
    high = 1.0 if x == n else float(scipy_stats.beta.ppf(1 - alpha / 2, x + 1, n - x))
    return RateInterval(stats.rate, low, high, "clopper-pearson", alpha)


def rate_interval(stats: ProportionStats, *, alpha: float = 0.05) -> RateInterval:
    """Wilson, or Clopper-Pearson when fewer than 5 successes or failures were seen."""
    _check_rate(stats, "stats")
    if min(stats.successes, stats.n - stats.successes) < SMALL_EXPECTED_COUNT:
        return clopper_pearson_interval(stats, alpha=alpha)
    return wilson_interval(stats, alpha=alpha)


def newcombe_arrays(x_c, n_c, x_t, n_t, alpha: float):
    """Newcombe's hybrid score interval (1998, method 10) for ``p_t - p_c``, vectorised.

    With Wilson limits ``(l_t, u_t)`` and ``(l_c, u_c)``: ``d = p_t - p_c``,
    ``low = d - sqrt((p_t - l_t)^2 + (u_c - p_c)^2)``,
    ``high = d + sqrt((u_t - p_t)^2 + (p_c - l_c)^2)``. Returns (low, high).
    """
    x_c, n_c, x_t, n_t = (np.asarray(v, dtype=float) for v in (x_c, n_c, x_t, n_t))
    p_c = x_c / n_c
    p_t = x_t / n_t
    l_c, u_c = wilson_arrays(x_c, n_c, alpha)
    l_t, u_t = wilson_arrays(x_t, n_t, alpha)
    d = p_t - p_c
    low = d - np.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2)
    high = d + np.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2)
    return low, high


def two_proportion_z_arrays(x_c, n_c, x_t, n_t):
    """Pooled two-proportion z-test, vectorised: ``pbar = (x_c + x_t) / (n_c + n_t)``,
    ``se0 = sqrt(pbar (1 - pbar) (1/n_c + 1/n_t))``, ``z = (p_t - p_c) / se0``,
    ``p = 2 (1 - Phi(|z|))`` (1 when ``se0 = 0``). Returns ``(difference, z, p)``."""
    x_c, n_c, x_t, n_t = (np.asarray(v, dtype=float) for v in (x_c, n_c, x_t, n_t))
    pooled = (x_c + x_t) / (n_c + n_t)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    difference = x_t / n_t - x_c / n_c
    degenerate = se0 <= 0
    z = np.where(degenerate, 0.0, difference / np.where(degenerate, 1.0, se0))
    p = np.where(degenerate, 1.0, 2 * scipy_stats.norm.sf(np.abs(z)))
    return difference, z, p


def relative_rate_arrays(x_c, n_c, x_t, n_t):
    """Relative lift of rates by the delta method, vectorised:
    ``lift = p_t / p_c - 1``, ``Var = p_t (1-p_t) / (n_t p_c^2) + p_t^2 p_c (1-p_c) / (n_c p_c^4)``.
    Returns ``(lift, se)``."""
    x_c, n_c, x_t, n_t = (np.asarray(v, dtype=float) for v in (x_c, n_c, x_t, n_t))
    p_c = x_c / n_c
    p_t = x_t / n_t
    variance = p_t * (1 - p_t) / (n_t * p_c**2) + p_t**2 * p_c * (1 - p_c) / (n_c * p_c**4)
    return p_t / p_c - 1, np.sqrt(variance)


def is_small(control: ProportionStats, treatment: ProportionStats) -> bool:
    """True when any expected cell count of the 2x2 table is below 5."""
    total_n = control.n + treatment.n
    total_x = control.successes + treatment.successes
    expected = [
        arm.n * share
        for arm in (control, treatment)
        for share in (total_x / total_n, (total_n - total_x) / total_n)
    ]
    return min(expected) < SMALL_EXPECTED_COUNT


def two_proportion_test(
    control: ProportionStats, treatment: ProportionStats, *, alpha: float = 0.05
) -> ProportionDifference:
    """Test ``treatment.rate - control.rate``.

    p-value: the pooled z-test (:func:`two_proportion_z_arrays`; statsmodels
    ``proportions_ztest``), or Fisher's exact test (``scipy.stats.fisher_exact``) when an
    expected cell count is below 5. Interval: Newcombe's hybrid score interval
    (:func:`newcombe_arrays`; statsmodels ``confint_proportions_2indep(method="newcomb")``),
    which keeps its coverage with few events. Relative lift: delta method
    (:func:`relative_rate_arrays`), None when the control rate is 0.
    """
    _check_rate(control, "control")
    _check_rate(treatment, "treatment")
    alpha = check_alpha(alpha)
    x_c, n_c, x_t, n_t = control.successes, control.n, treatment.successes, treatment.n
    difference, z, p = (float(v) for v in two_proportion_z_arrays(x_c, n_c, x_t, n_t))
    test = "pooled z"
    if is_small(control, treatment):
        table = [[x_t, n_t - x_t], [x_c, n_c - x_c]]
        p = float(scipy_stats.fisher_exact(table, alternative="two-sided").pvalue)
        test = "fisher exact"
    low, high = (float(v) for v in newcombe_arrays(x_c, n_c, x_t, n_t, alpha))
    se = float(
        np.sqrt(
            control.rate * (1 - control.rate) / n_c + treatment.rate * (1 - treatment.rate) / n_t
        )
    )
    relative = (None, None, None)
    if x_c > 0:
        lift, lift_se = (float(v) for v in relative_rate_arrays(x_c, n_c, x_t, n_t))
        half = _z(alpha) * lift_se
        relative = (lift, lift - half, lift + half)
    return ProportionDifference(
        control_rate=control.rate,
        treatment_rate=treatment.rate,
        difference=difference,
        standard_error=se,
        z_statistic=z,
        p_value=min(p, 1.0),
        test=test,
        ci_low=low,
        ci_high=high,
        ci_method="newcombe",
        relative_lift=relative[0],
        relative_ci_low=relative[1],
        relative_ci_high=relative[2],
        alpha=alpha,
    )


def _check_rate(stats: ProportionStats, name: str) -> None:
    if not isinstance(stats, ProportionStats):
        raise StatsInputError(f"{name} must be ProportionStats(n, successes), got {stats!r}")
    if stats.n == 0:
        raise StatsInputError(f"{name} has no trials (n = 0); a rate needs n >= 1")
