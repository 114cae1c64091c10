"""MeanStats and ProportionStats: sufficient statistics that add up."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.stats import MeanStats, ProportionStats, StatsInputError


def test_mean_and_variance_match_numpy(rng):
    """mean = sum / n and the sample variance (ddof=1) equal numpy's."""
    values = rng.lognormal(0, 1, 500)
    stats = MeanStats.from_values(values)
    assert stats.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert stats.variance == pytest.approx(np.var(values, ddof=1), rel=1e-9)


def test_sums_add_up(rng):
    """Stats of two halves added equal the stats of the whole."""
    values = rng.normal(5, 2, 100)
    whole = MeanStats.from_values(values)
    halves = MeanStats.from_values(values[:40]) + MeanStats.from_values(values[40:])
    assert halves.n == whole.n
    assert halves.variance == pytest.approx(whole.variance, rel=1e-12)
    assert (ProportionStats(10, 3) + ProportionStats(5, 1)) == ProportionStats(15, 4)


def test_rounding_never_gives_a_negative_variance():
    """Equal values whose sums round badly still give variance 0, not a negative one."""
    stats = MeanStats(n=3, sum=0.3, sum_squares=0.03 - 1e-18)
    assert stats.variance == 0.0


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"n": -1, "sum": 0, "sum_squares": 0}, "must not be negative"),
        ({"n": 1.5, "sum": 0, "sum_squares": 0}, "whole number"),
        ({"n": True, "sum": 0, "sum_squares": 0}, "whole number"),
        ({"n": 2, "sum": float("nan"), "sum_squares": 0}, "finite"),
        ({"n": 2, "sum": 1, "sum_squares": -1}, "sum_squares"),
        ({"n": 0, "sum": 1, "sum_squares": 1}, "n = 0"),
        ({"n": 2, "sum": "3", "sum_squares": 1}, "number"),
    ],
)
def test_bad_mean_stats_raise_one_error_type(fields, message):
    """Invalid sufficient statistics raise StatsInputError (a ValueError) naming the field."""
    with pytest.raises(StatsInputError, match=message):
        MeanStats(**fields)


def test_undefined_moments_raise():
    """The mean of nothing and the variance of one value are refused, not NaN."""
    with pytest.raises(StatsInputError, match="zero observations"):
        _ = MeanStats(0, 0, 0).mean
    with pytest.raises(StatsInputError, match="n >= 2"):
        _ = MeanStats(1, 2.0, 4.0).variance
    with pytest.raises(ValueError, match="zero trials"):
        _ = ProportionStats(0, 0).rate


def test_bad_proportions_raise():
    """More successes than trials, or negative counts, are refused."""
    with pytest.raises(StatsInputError, match="cannot exceed"):
        ProportionStats(n=3, successes=4)
    with pytest.raises(StatsInputError, match="negative"):
        ProportionStats(n=3, successes=-1)
