"""Sequential testing: confidence sequences and always-valid p-values, so looking at an
experiment every day does not inflate the false-positive rate.

The asymptotic confidence sequence of Waudby-Smith et al. (2023, "Time-uniform central
limit theory and asymptotic confidence sequences", arXiv:2103.06476, eq. 9), as GrowthBook
uses it. For an estimate with variance ``V`` after ``N`` units in total, ``s2 = V * N``,
and the tuning ``rho`` that makes the sequence tightest at ``N* = tuning_n`` units
(eq. 161): ``rho^2 = (-2 ln alpha + ln(-2 ln alpha + 1)) / N*``,

    half_width = sqrt( s2 * 2 (N rho^2 + 1) / (N^2 rho^2) * ln( sqrt(N rho^2 + 1) / alpha ) ).

The always-valid p-value is the smallest level at which that sequence (same ``rho``)
excludes 0:

    p = min(1, sqrt(N rho^2 + 1) * exp( -est^2 N^2 rho^2 / (2 s2 (N rho^2 + 1)) )),

which is ``1 / Lambda``, the reciprocal of the normal-mixture likelihood ratio of the
mSPRT (Johari et al. 2017) with mixing variance ``tau^2 = rho^2 s2``. Taking the running
minimum over looks keeps it valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.stats.errors import StatsInputError
from experiments.stats.means import check_alpha
from experiments.stats.results import AsDict

#: Units (all arms together) at which the sequence is tightest; GrowthBook's default.
DEFAULT_TUNING_N = 5000


@dataclass(frozen=True)
class SequentialResult(AsDict):
    estimate: float
    variance: float
    n_total: int
    alpha: float
    tuning_n: float
    rho: float
    ci_low: float
    ci_high: float
    p_value: float


def rho_for(alpha: float, tuning_n: float = DEFAULT_TUNING_N) -> float:
    """``rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / tuning_n)``."""
    alpha = check_alpha(alpha)
    if not tuning_n > 0:
        raise StatsInputError(f"tuning_n must be positive, got {tuning_n!r}")
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_n)


def half_width_arrays(variance, n_total, alpha: float, tuning_n: float = DEFAULT_TUNING_N):
    """Confidence-sequence half width, vectorised (formula in the module docstring)."""
    rho2 = rho_for(alpha, tuning_n) ** 2
    variance = np.asarray(variance, dtype=float)
    n_total = np.asarray(n_total, dtype=float)
    s2 = variance * n_total
    width_term = (
        2 * (n_total * rho2 + 1) / (n_total**2 * rho2) * np.log(np.sqrt(n_total * rho2 + 1) / alpha)
    )
    return np.sqrt(s2 * width_term)


def p_value_arrays(estimate, variance, n_total, alpha: float, tuning_n: float = DEFAULT_TUNING_N):
    """Always-valid p-value, vectorised (formula in the module docstring); 1 when the
    estimate is 0, 0 when the variance is 0 and the estimate is not."""
    rho2 = rho_for(alpha, tuning_n) ** 2
    estimate, variance, n_total = (
        np.asarray(value, dtype=float) for value in (estimate, variance, n_total)
    )
    s2 = variance * n_total
    degenerate = s2 <= 0
    exponent = (
        -(estimate**2)
        * n_total**2
        * rho2
        / (2 * np.where(degenerate, 1.0, s2) * (n_total * rho2 + 1))
    )
    p = np.minimum(1.0, np.sqrt(n_total * rho2 + 1) * np.exp(exponent))
    return np.where(degenerate, np.where(estimate == 0, 1.0, 0.0), p)


def confidence_sequence(
    *,
    estimate: float,
    variance: float,
    n_total: int,
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
) -> SequentialResult:
    """The ``1 - alpha`` confidence sequence and always-valid p-value of an estimate
    (a difference, a relative lift, a log-ratio) with ``variance`` (its squared standard
    error) after ``n_total`` units across the arms."""
    alpha = check_alpha(alpha)
    for name, value in (("estimate", estimate), ("variance", variance)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise StatsInputError(f"{name} must be a finite number, got {value!r}")
    if variance < 0:
        raise StatsInputError(f"variance must not be negative, got {variance}")
    if isinstance(n_total, bool) or not isinstance(n_total, int) or n_total < 1:
        raise StatsInputError(f"n_total must be a whole number >= 1, got {n_total!r}")
    half = float(half_width_arrays(variance, n_total, alpha, tuning_n))
    p = float(p_value_arrays(estimate, variance, n_total, alpha, tuning_n))
    return SequentialResult(
        estimate=float(estimate),
        variance=float(variance),
        n_total=n_total,
        alpha=alpha,
        tuning_n=float(tuning_n),
        rho=rho_for(alpha, tuning_n),
        ci_low=float(estimate) - half,
        ci_high=float(estimate) + half,
        p_value=p,
    )
