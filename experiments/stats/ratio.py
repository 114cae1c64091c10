"""Ratio metrics at the randomization unit: sufficient statistics and the delta method.

An experiment assigns *units* (users, scripts, teams); each unit sends several calls. A
per-call metric such as cost per request is then a ratio of two per-unit sums,
``Y / X`` with ``y_u = sum of the metric over unit u's calls`` and ``x_u = its number of
calls`` (or of calls that carry the metric, e.g. calls with a quality signal). Treating
the calls as independent understates the variance whenever units differ; the delta
method on unit-level sums does not (Deng et al., "Applying the Delta Method in Metric
Analytics", 2018; GrowthBook and Statsig use the same estimator).

:class:`RatioSums` holds, per arm, the sums over units that every test needs:
``n`` units, ``sum_x``, ``sum_y``, ``sum_xx``, ``sum_yy``, ``sum_xy``. Sums of two arms'
disjoint unit sets add up (:meth:`RatioSums.merge`), so rollups can be summed in SQL.

For the ratio ``r = mean(y) / mean(x)`` the delta method gives::

    Var(r) ~= (s_yy - 2 r s_xy + r^2 s_xx) / (n * mean(x)^2)

with the sample (co)variances ``s`` over units (``ddof=1``). When every unit has exactly
one call (``x_u = 1``), ``s_xx = s_xy = 0`` and this reduces to the variance of a mean,
``s_yy / n``: a call-level experiment's tests are today's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.stats.errors import StatsInputError
from experiments.stats.means import (
    MeanDifference,
    RelativeDifference,
    check_alpha,
    relative_result,
    welch_result,
)
from experiments.stats.results import AsDict
from experiments.stats.sequential import DEFAULT_TUNING_N, SequentialResult, confidence_sequence


@dataclass(frozen=True)
class RatioSums(AsDict):
    """Sums over the units of one arm for the ratio ``sum(y) / sum(x)``."""

    n: int = 0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_yy: float = 0.0
    sum_xy: float = 0.0

    def __post_init__(self) -> None:
        if self.n < 0:
            raise StatsInputError(f"the number of units must be >= 0, got {self.n}")
        if self.sum_xx < 0 or self.sum_yy < 0:
            raise StatsInputError("sums of squares must be >= 0")

    @classmethod
    def from_units(cls, pairs) -> RatioSums:
        """Sums of ``(x_u, y_u)`` pairs, one per unit (a helper for tests and simulations)."""
        n = 0
        sx = sy = sxx = syy = sxy = 0.0
        for x, y in pairs:
            n += 1
            sx += x
            sy += y
            sxx += x * x
            syy += y * y
            sxy += x * y
        return cls(n, sx, sy, sxx, syy, sxy)

    def merge(self, other: RatioSums) -> RatioSums:
        """The sums of two disjoint sets of units."""
        return RatioSums(
            self.n + other.n,
            self.sum_x + other.sum_x,
            self.sum_y + other.sum_y,
            self.sum_xx + other.sum_xx,
            self.sum_yy + other.sum_yy,
            self.sum_xy + other.sum_xy,
        )

    @classmethod
    def from_calls(cls, n: int, total: float, sum_squares: float) -> RatioSums:
        """The sums when the unit is the call (``x_u = 1``): from ``(n, sum, sum of
        squares)`` of the calls; the ratio tests then reduce to the call-level ones."""
        return cls(int(n), float(n), float(total), float(n), float(sum_squares), float(total))

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n if self.n else math.nan

    @property
    def mean_y(self) -> float:
        return self.sum_y / self.n if self.n else math.nan

    def covariances(self) -> tuple[float, float, float]:
        """Sample ``(var_x, var_y, cov_xy)`` over units (ddof=1); NaN below two units."""
        if self.n < 2:
            return math.nan, math.nan, math.nan
        n = self.n
        var_x = max(self.sum_xx - self.sum_x**2 / n, 0.0) / (n - 1)
        var_y = max(self.sum_yy - self.sum_y**2 / n, 0.0) / (n - 1)
        cov_xy = (self.sum_xy - self.sum_x * self.sum_y / n) / (n - 1)
        return var_x, var_y, cov_xy


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio ``sum(y) / sum(x)`` and the delta-method variance of that estimate."""

    value: float
    variance: float
    n_units: int

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan


def ratio_estimate(sums: RatioSums) -> RatioEstimate:
    """``sum_y / sum_x`` with its delta-method variance (NaN where it is undefined)."""
    if sums.n == 0 or sums.sum_x == 0:
        return RatioEstimate(math.nan, math.nan, sums.n)
    ratio = sums.sum_y / sums.sum_x
    var_x, var_y, cov_xy = sums.covariances()
    if math.isnan(var_x):
        return RatioEstimate(ratio, math.nan, sums.n)
    mean_x = sums.mean_x
    variance = (var_y - 2 * ratio * cov_xy + ratio**2 * var_x) / (sums.n * mean_x**2)
    return RatioEstimate(ratio, max(variance, 0.0), sums.n)


# --- Two arms: absolute and relative differences of ratios -----------------------------------


def ratio_arrays(n, sum_x, sum_y, sum_xx, sum_yy, sum_xy):
    """Vectorised :func:`ratio_estimate`: ``(ratio, per_unit_variance)`` where
    ``per_unit_variance = s_yy - 2 r s_xy + r^2 s_xx) / mean(x)^2`` is the variance of the
    unit's linearised value ``(y_u - r x_u) / mean(x)``, so ``Var(r) = per_unit_variance / n``."""
    n, sum_x, sum_y, sum_xx, sum_yy, sum_xy = (
        np.asarray(value, dtype=float) for value in (n, sum_x, sum_y, sum_xx, sum_yy, sum_xy)
    )
    ratio = sum_y / sum_x
    var_x = np.maximum(sum_xx - sum_x**2 / n, 0.0) / (n - 1)
    var_y = np.maximum(sum_yy - sum_y**2 / n, 0.0) / (n - 1)
    cov_xy = (sum_xy - sum_x * sum_y / n) / (n - 1)
    mean_x = sum_x / n
    per_unit = np.maximum((var_y - 2 * ratio * cov_xy + ratio**2 * var_x) / mean_x**2, 0.0)
    return ratio, per_unit


@dataclass(frozen=True)
class RatioComparison(AsDict):
    """``treatment - control`` of a ratio metric over units, fixed horizon and sequential.

    ``absolute``: Welch's t on the delta-method variances (df by Welch-Satterthwaite over
    units); ``relative``: ``r_t / r_c - 1`` by the delta method; ``sequential``: the
    confidence sequences of both (``None`` unless asked for)."""

    control: RatioEstimate
    treatment: RatioEstimate
    absolute: MeanDifference
    relative: RelativeDifference | None
    sequential_absolute: SequentialResult | None = None
    sequential_relative: SequentialResult | None = None


def _check_arms(control: RatioSums, treatment: RatioSums) -> None:
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, RatioSums):
            raise StatsInputError(f"{name} must be RatioSums, got {arm!r}")
        if arm.n < 2:
            raise StatsInputError(f"{name} needs n >= 2 units, got n = {arm.n}")
        if arm.sum_x <= 0:
            raise StatsInputError(f"{name} has no denominator yet (sum of x is {arm.sum_x})")


def ratio_difference(
    control: RatioSums,
    treatment: RatioSums,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> RatioComparison:
    """Compare a ratio metric (``sum(y) / sum(x)`` over units) between two arms.

    Absolute: ``d = r_t - r_c``, ``se^2 = Var(r_t) + Var(r_c)`` (delta method, module
    docstring), Welch's t with ``df`` from the units; with one call per unit (``x_u = 1``)
    this *is* Welch's t-test of the call-level means. Relative: ``lift = r_t / r_c - 1``,
    ``Var = Var(r_t) / r_c^2 + r_t^2 Var(r_c) / r_c^4`` (the same formula as
    :func:`experiments.stats.means.delta_relative_arrays`). With ``sequential`` both get
    the always-valid confidence sequence over ``n_c + n_t`` units.
    """
    _check_arms(control, treatment)
    alpha = check_alpha(alpha)
    estimates = []
    for arm in (control, treatment):
        ratio, per_unit = ratio_arrays(
            arm.n, arm.sum_x, arm.sum_y, arm.sum_xx, arm.sum_yy, arm.sum_xy
        )
        estimates.append((float(ratio), float(per_unit)))
    (r_c, v_c), (r_t, v_t) = estimates
    absolute = welch_result(control.n, r_c, v_c, treatment.n, r_t, v_t, alpha=alpha)
    difference, se = absolute.difference, absolute.standard_error
    relative = None
    if r_c != 0:
        relative = relative_result(control.n, r_c, v_c, treatment.n, r_t, v_t, alpha=alpha)
    sequential_absolute = sequential_relative = None
    if sequential:
        n_total = int(control.n + treatment.n)
        sequential_absolute = confidence_sequence(
            estimate=difference, variance=se**2, n_total=n_total, alpha=alpha, tuning_n=tuning_n
        )
        if relative is not None:
            sequential_relative = confidence_sequence(
                estimate=relative.lift,
                variance=relative.standard_error**2,
                n_total=n_total,
                alpha=alpha,
                tuning_n=tuning_n,
            )
    return RatioComparison(
        control=RatioEstimate(r_c, v_c / control.n, control.n),
        treatment=RatioEstimate(r_t, v_t / treatment.n, treatment.n),
        absolute=absolute,
        relative=relative,
        sequential_absolute=sequential_absolute,
        sequential_relative=sequential_relative,
    )
