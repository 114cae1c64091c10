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
from dataclasses import asdict, dataclass

from experiments.stats.errors import StatsInputError


@dataclass(frozen=True)
class RatioSums:
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

    def as_dict(self) -> dict:
        return asdict(self)

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
