"""Sufficient statistics: what the database sums, and what every test in this package takes.

- :class:`MeanStats` ``(n, sum, sum_squares)`` for a numeric metric (cost, quality,
  confidence, latency): mean ``sum / n`` and sample variance
  ``(sum_squares - sum**2 / n) / (n - 1)``.
- :class:`ProportionStats` ``(n, successes)`` for a rate (escalation, error).

Both add up (``a + b``), so per-hour or per-day rows can be combined in any order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from experiments.stats.errors import StatsInputError


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatsInputError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise StatsInputError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise StatsInputError(f"{name} must not be negative, got {value!r}")
    return int(value)


def _check_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatsInputError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise StatsInputError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MeanStats:
    """n observations of a numeric metric as (n, sum, sum of squares)."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_count("n", self.n))
        object.__setattr__(self, "sum", _check_number("sum", self.sum))
        object.__setattr__(self, "sum_squares", _check_number("sum_squares", self.sum_squares))
        if self.sum_squares < 0:
            raise StatsInputError(f"sum_squares must not be negative, got {self.sum_squares}")
        if self.n == 0 and (self.sum != 0 or self.sum_squares != 0):
            raise StatsInputError("with n = 0, sum and sum_squares must be 0")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> MeanStats:
        """The sufficient statistics of raw values (for tests and small samples)."""
        items = [float(value) for value in values]
        return cls(n=len(items), sum=math.fsum(items), sum_squares=math.fsum(v * v for v in items))

    def __add__(self, other: MeanStats) -> MeanStats:
        return MeanStats(
            n=self.n + other.n,
            sum=self.sum + other.sum,
            sum_squares=self.sum_squares + other.sum_squares,
        )

    @property
    def mean(self) -> float:
        """``sum / n``; raises for n = 0."""
        if self.n == 0:
            raise StatsInputError("the mean of zero observations is undefined")
        return self.sum / self.n

    @property
    def variance(self) -> float:
        """Sample variance ``(sum_squares - sum**2 / n) / (n - 1)`` (clamped at 0 against
        rounding); raises for n < 2."""
        if self.n < 2:
            raise StatsInputError(f"a sample variance needs n >= 2 observations, got n = {self.n}")
        return max((self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1), 0.0)

    def as_dict(self) -> dict:
        return {"n": self.n, "sum": self.sum, "sum_squares": self.sum_squares}


@dataclass(frozen=True)
class ProportionStats:
    """n trials with ``successes`` events (an escalation, an error)."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_count("n", self.n))
        object.__setattr__(self, "successes", _check_count("successes", self.successes))
        if self.successes > self.n:
            raise StatsInputError(
                f"successes ({self.successes}) cannot exceed the number of trials n ({self.n})"
            )

    def __add__(self, other: ProportionStats) -> ProportionStats:
        return ProportionStats(n=self.n + other.n, successes=self.successes + other.successes)

    @property
    def rate(self) -> float:
        """``successes / n``; raises for n = 0."""
        if self.n == 0:
            raise StatsInputError("the rate of zero trials is undefined")
        return self.successes / self.n

    def as_dict(self) -> dict:
        return {"n": self.n, "successes": self.successes}
