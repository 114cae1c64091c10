"""Differences of means: Welch's t-test (absolute) and the delta method (relative lift).

Kernels named ``*_arrays`` take numpy arrays of sufficient statistics and broadcast, so
the simulation suite (``routing stats-validate``) runs the very same formulas over
thousands of simulated experiments at once; the public functions validate one pair of
:class:`~experiments.stats.summaries.MeanStats` and return a frozen result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.results import AsDict
from experiments.stats.summaries import MeanStats


def check_alpha(alpha: float) -> float:
    """``alpha`` must be a probability strictly between 0 and 1."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise StatsInputError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


@dataclass(frozen=True)
class MeanDifference(AsDict):
    """Welch's two-sample t-test of ``treatment - control``."""

    control_mean: float
    treatment_mean: float
    difference: float
    standard_error: float
    degrees_of_freedom: float
    t_statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float


@dataclass(frozen=True)
class RelativeDifference(AsDict):
    """Relative lift ``treatment_mean / control_mean - 1`` with a delta-method interval."""

    control_mean: float
    treatment_mean: float
    lift: float
    standard_error: float
    z_statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float


def welch_arrays(n_c, mean_c, var_c, n_t, mean_t, var_t):
    """Welch's t-test, vectorised. Returns ``(difference, se, df, t, p_two_sided)``.

    ``d = mean_t - mean_c``, ``se^2 = var_c / n_c + var_t / n_t``, Welch-Satterthwaite
    ``df = se^4 / ((var_c/n_c)^2 / (n_c-1) + (var_t/n_t)^2 / (n_t-1))``, ``t = d / se``,
    ``p = 2 * P(T_df > |t|)``. When both variances are 0: ``p = 1`` if ``d == 0`` else 0,
    and ``df = n_c + n_t - 2``.
    """
    n_c, mean_c, var_c, n_t, mean_t, var_t = (
        np.asarray(value, dtype=float) for value in (n_c, mean_c, var_c, n_t, mean_t, var_t)
    )
    share_c = var_c / n_c
    share_t = var_t / n_t
    se2 = share_c + share_t
    difference = mean_t - mean_c
    degenerate = se2 <= 0
    safe_se2 = np.where(degenerate, 1.0, se2)
    denominator = share_c**2 / (n_c - 1) + share_t**2 / (n_t - 1)
    df = np.where(degenerate, n_c + n_t - 2, safe_se2**2 / np.where(degenerate, 1.0, denominator))
    se = np.sqrt(se2)
    t = np.where(degenerate, np.where(difference == 0, 0.0, np.inf), difference / np.sqrt(safe_se2))
    t = np.where(degenerate & (difference < 0), -np.inf, t)
    p = np.where(
        degenerate,
        np.where(difference == 0, 1.0, 0.0),
        2 * scipy_stats.t.sf(np.abs(t), df),
    )
    return difference, se, df, t, p


def delta_relative_arrays(n_c, mean_c, var_c, n_t, mean_t, var_t):
    """Relative lift by the delta method, vectorised. Returns ``(lift, se, z, p_two_sided)``.

    ``lift = mean_t / mean_c - 1``; to first order
    ``Var(lift) = var_t / (n_t mean_c^2) + mean_t^2 var_c / (n_c mean_c^4)``;
    ``z = lift / se``, ``p = 2 * (1 - Phi(|z|))``. A zero variance gives ``p = 1`` when
    ``lift == 0`` else 0.
    """
    n_c, mean_c, var_c, n_t, mean_t, var_t = (
        np.asarray(value, dtype=float) for value in (n_c, mean_c, var_c, n_t, mean_t, var_t)
    )
    lift = mean_t / mean_c - 1
    variance = var_t / (n_t * mean_c**2) + mean_t**2 * var_c / (n_c * mean_c**4)
    se = np.sqrt(variance)
    degenerate = variance <= 0
    z = np.where(
        degenerate,
        np.where(lift == 0, 0.0, np.copysign(np.inf, lift)),
        lift / np.where(degenerate, 1.0, se),
    )
    p = np.where(degenerate, np.where(lift == 0, 1.0, 0.0), 2 * scipy_stats.norm.sf(np.abs(z)))
    return lift, se, z, p


def _check_pair(control: MeanStats, treatment: MeanStats) -> None:
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, MeanStats):
            raise StatsInputError(f"{name} must be MeanStats(n, sum, sum_squares), got {arm!r}")
        if arm.n < 2:
            raise StatsInputError(f"{name} needs n >= 2 observations, got n = {arm.n}")


def moments(arm: MeanStats) -> tuple[int, float, float]:
    """``(n, mean, variance)`` of an arm, the order every ``*_result`` function takes."""
    return arm.n, arm.mean, arm.variance


def welch_t_test(
    control: MeanStats, treatment: MeanStats, *, alpha: float = 0.05
) -> MeanDifference:
    """Welch's unequal-variance t-test of ``treatment.mean - control.mean``, with the
    two-sided ``1 - alpha`` interval ``d +- t_{1-alpha/2, df} * se`` (formulas in
    :func:`welch_arrays`). Matches ``scipy.stats.ttest_ind_from_stats(equal_var=False)``.
    """
    _check_pair(control, treatment)
    return welch_result(*moments(control), *moments(treatment), alpha=alpha)


def welch_result(n_c, mean_c, var_c, n_t, mean_t, var_t, *, alpha: float) -> MeanDifference:
    """:func:`welch_arrays` for one pair of arms given as ``(n, mean, variance)`` (of the
    observations: calls, or units' linearised values), with its ``1 - alpha`` interval."""
    alpha = check_alpha(alpha)
    difference, se, df, t, p = (
        float(value) for value in welch_arrays(n_c, mean_c, var_c, n_t, mean_t, var_t)
    )
    half_width = float(scipy_stats.t.ppf(1 - alpha / 2, df)) * se
    return MeanDifference(
        control_mean=float(mean_c),
        treatment_mean=float(mean_t),
        difference=difference,
        standard_error=se,
        degrees_of_freedom=df,
        t_statistic=_finite(t),
        p_value=p,
        ci_low=difference - half_width,
        ci_high=difference + half_width,
        alpha=alpha,
    )


def relative_difference(
    control: MeanStats, treatment: MeanStats, *, alpha: float = 0.05
) -> RelativeDifference:
    """Relative lift ``treatment.mean / control.mean - 1`` with the delta-method normal
    interval ``lift +- z_{1-alpha/2} * se`` (formulas in :func:`delta_relative_arrays`).
    The control mean must not be 0.
    """
    _check_pair(control, treatment)
    if control.mean == 0:
        raise StatsInputError("a relative difference needs a control mean other than 0")
    return relative_result(*moments(control), *moments(treatment), alpha=alpha)


def relative_result(n_c, mean_c, var_c, n_t, mean_t, var_t, *, alpha: float) -> RelativeDifference:
    """:func:`delta_relative_arrays` for one pair of arms given as ``(n, mean,
    variance)``, with its normal ``1 - alpha`` interval."""
    alpha = check_alpha(alpha)
    lift, se, z, p = (
        float(value) for value in delta_relative_arrays(n_c, mean_c, var_c, n_t, mean_t, var_t)
    )
    half_width = float(scipy_stats.norm.ppf(1 - alpha / 2)) * se
    return RelativeDifference(
        control_mean=float(mean_c),
        treatment_mean=float(mean_t),
        lift=lift,
        standard_error=se,
        z_statistic=_finite(z),
        p_value=p,
        ci_low=lift - half_width,
        ci_high=lift + half_width,
        alpha=alpha,
    )


def _finite(value: float) -> float:
    """Infinite statistics (zero variance, non-zero difference) are reported as +-1e308 so
    the result stays valid JSON."""
    if value == np.inf:
        return 1e308
    if value == -np.inf:
        return -1e308
    return value
