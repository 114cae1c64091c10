"""Sample size, power and days to decision for a two-arm comparison.

Two-sided z approximation with per-arm variances ``v_c``, ``v_t`` and ``n`` units per arm:
``se(n) = sqrt((v_c + v_t) / n)`` and, for a true difference ``delta``,

    power(n) = Phi(|delta| / se - z_{1-alpha/2}) + Phi(-|delta| / se - z_{1-alpha/2})

(both tails, as statsmodels' ``NormalIndPower``). The sample size is the ``n`` with
``power(n) = target``, found by root finding (no closed-form shortcut that drops the far
tail). With sequential testing the rejection boundary is the confidence-sequence half
width ``h(n)`` instead of ``z se``, so ``power(n) = Phi((|delta| - h) / se) +
Phi((-|delta| - h) / se)``, which needs more units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize
from scipy import stats as scipy_stats

from experiments.stats import sequential as seq
from experiments.stats.errors import StatsInputError
from experiments.stats.means import check_alpha
from experiments.stats.results import AsDict

_MAX_N = 1e12
#: A t-test needs two observations per arm; no sample size below that is reported.
_MIN_N = 2.0


@dataclass(frozen=True)
class SampleSize(AsDict):
    per_arm: int
    per_arm_exact: float
    effect: float
    variance_control: float
    variance_treatment: float
    alpha: float
    power: float
    sequential: bool


def _check_inputs(variance_control, variance_treatment, effect, alpha):
    for name, value in (
        ("variance_control", variance_control),
        ("variance_treatment", variance_treatment),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise StatsInputError(f"{name} must be a finite number >= 0, got {value!r}")
    if variance_control + variance_treatment <= 0:
        raise StatsInputError("at least one variance must be positive")
    if (
        isinstance(effect, bool)
        or not isinstance(effect, int | float)
        or not math.isfinite(effect)
        or effect == 0
    ):
        raise StatsInputError(f"effect must be a finite non-zero difference, got {effect!r}")
    return check_alpha(alpha)


def power_at(
    *,
    n_per_arm: float,
    variance_control: float,
    variance_treatment: float,
    effect: float,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = seq.DEFAULT_TUNING_N,
) -> float:
    """Power to detect ``effect`` with ``n_per_arm`` units in each arm (formulas above)."""
    alpha = _check_inputs(variance_control, variance_treatment, effect, alpha)
    if not n_per_arm > 0:
        raise StatsInputError(f"n_per_arm must be positive, got {n_per_arm!r}")
    variance = (variance_control + variance_treatment) / n_per_arm
    se = math.sqrt(variance)
    if sequential:
        boundary = float(seq.half_width_arrays(variance, 2 * n_per_arm, alpha, tuning_n))
    else:
        boundary = float(scipy_stats.norm.ppf(1 - alpha / 2)) * se
    size = abs(effect)
    return float(
        scipy_stats.norm.cdf((size - boundary) / se) + scipy_stats.norm.cdf((-size - boundary) / se)
    )


def sample_size_per_arm(
    *,
    variance_control: float,
    variance_treatment: float,
    effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sequential: bool = False,
    tuning_n: float = seq.DEFAULT_TUNING_N,
) -> SampleSize:
    """Units per arm needed to detect ``effect`` (an absolute difference) with ``power``."""
    alpha = _check_inputs(variance_control, variance_treatment, effect, alpha)
    if isinstance(power, bool) or not isinstance(power, int | float) or not alpha < power < 1:
        raise StatsInputError(f"power must be between alpha and 1, got {power!r}")

    def shortfall(n: float) -> float:
        return (
            power_at(
                n_per_arm=n,
                variance_control=variance_control,
                variance_treatment=variance_treatment,
                effect=effect,
                alpha=alpha,
                sequential=sequential,
                tuning_n=tuning_n,
            )
            - power
        )

    if shortfall(_MIN_N) >= 0:
        # Even the smallest testable sample detects an effect this large (or noise this low).
        exact = _MIN_N
    else:
        low, high = _MIN_N, _MIN_N * 4
        while shortfall(high) < 0:
            low, high = high, high * 4
            if high > _MAX_N:
                raise StatsInputError("the effect is too small to detect with any realistic sample")
        exact = float(optimize.brentq(shortfall, low, high, xtol=1e-10, rtol=1e-12, maxiter=500))
    return SampleSize(
        per_arm=math.ceil(exact - 1e-9),
        per_arm_exact=exact,
        effect=float(effect),
        variance_control=float(variance_control),
        variance_treatment=float(variance_treatment),
        alpha=alpha,
        power=float(power),
        sequential=sequential,
    )


def days_to_decision(
    *, required_per_arm: int, current_per_arm: Sequence[int], daily_units_per_arm: Sequence[float]
) -> float | None:
    """Days until every arm holds ``required_per_arm`` units at its current daily rate:
    ``max_i max(0, required - current_i) / rate_i``; 0 when already there, None when an
    arm that still needs units gets none."""
    if len(current_per_arm) != len(daily_units_per_arm) or not current_per_arm:
        raise StatsInputError("need one current count and one daily rate per arm")
    if required_per_arm < 0:
        raise StatsInputError(f"required_per_arm must be >= 0, got {required_per_arm}")
    days = 0.0
    for current, rate in zip(current_per_arm, daily_units_per_arm, strict=True):
        if current < 0 or rate < 0:
            raise StatsInputError("counts and daily rates must not be negative")
        missing = max(required_per_arm - current, 0)
        if missing == 0:
            continue
        if rate == 0:
            return None
        days = max(days, missing / rate)
    return days
