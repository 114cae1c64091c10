"""The delta-method ratio estimate against an independent numpy computation."""

import math

import numpy as np
import pytest

from experiments.stats.errors import StatsInputError
from experiments.stats.ratio import RatioSums, ratio_estimate


def _numpy_delta(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Deng et al. (2018), written from the per-unit arrays."""
    n = len(x)
    ratio = y.sum() / x.sum()
    cov = np.cov(np.vstack([x, y]), ddof=1)
    variance = (cov[1, 1] - 2 * ratio * cov[0, 1] + ratio**2 * cov[0, 0]) / (n * x.mean() ** 2)
    return ratio, variance


def test_ratio_matches_numpy_delta_method():
    rng = np.random.default_rng(7)
    x = rng.poisson(4, 500) + 1.0
    y = x * rng.lognormal(0, 0.8, 500)
    estimate = ratio_estimate(RatioSums.from_units(zip(x, y, strict=True)))
    ratio, variance = _numpy_delta(x, y)
    assert estimate.value == pytest.approx(ratio, rel=1e-9)
    assert estimate.variance == pytest.approx(variance, rel=1e-6)
    assert estimate.n_units == 500


def test_one_call_per_unit_reduces_to_the_variance_of_a_mean():
    rng = np.random.default_rng(3)
    y = rng.normal(10, 2, 300)
    estimate = ratio_estimate(RatioSums.from_units((1.0, v) for v in y))
    assert estimate.value == pytest.approx(y.mean())
    assert estimate.variance == pytest.approx(y.var(ddof=1) / len(y), rel=1e-9)


def test_merged_sums_equal_sums_of_all_units():
    a = RatioSums.from_units([(1, 2.0), (3, 5.0)])
    b = RatioSums.from_units([(2, 1.0)])
    assert a.merge(b) == RatioSums.from_units([(1, 2.0), (3, 5.0), (2, 1.0)])


def test_empty_and_single_unit_are_undefined_not_errors():
    assert math.isnan(ratio_estimate(RatioSums()).value)
    single = ratio_estimate(RatioSums.from_units([(2, 4.0)]))
    assert single.value == 2.0 and math.isnan(single.variance)


def test_negative_counts_are_refused():
    with pytest.raises(StatsInputError, match="units"):
        RatioSums(n=-1)
