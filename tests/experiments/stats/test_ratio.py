"""The delta-method ratio estimate against an independent numpy computation."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.means import relative_difference, welch_t_test
from experiments.stats.ratio import RatioSums, ratio_difference, ratio_estimate
from experiments.stats.sequential import confidence_sequence
from experiments.stats.summaries import MeanStats


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


def _units(rng, n, lift=0.0):
    """Clustered units: heavy-tailed calls per unit, a per-unit random effect on cost."""
    calls = 1 + rng.poisson(rng.lognormal(1.0, 1.0, n))
    effect = rng.lognormal(0.0, 0.8, n)
    cost = rng.gamma(2.0 * calls, 0.001 * effect * (1 + lift))
    return calls.astype(float), cost


def _numpy_comparison(xc, yc, xt, yt):
    """Independent reference: per-unit linearised values, numpy variances, no sums."""

    def arm(x, y):
        r = y.sum() / x.sum()
        linear = (y - r * x) / x.mean()
        return r, np.var(linear, ddof=1) / x.size

    (rc, vc), (rt, vt) = arm(xc, yc), arm(xt, yt)
    lift = rt / rc - 1
    lift_var = vt / rc**2 + rt**2 * vc / rc**4
    return rt - rc, math.sqrt(vc + vt), lift, math.sqrt(lift_var)


def test_two_arm_difference_matches_an_independent_numpy_delta_method():
    """Absolute and relative differences of ratios and their standard errors agree with a
    per-unit numpy computation to 1e-6."""
    rng = np.random.default_rng(17)
    xc, yc = _units(rng, 3000)
    xt, yt = _units(rng, 2500, lift=0.1)
    result = ratio_difference(
        RatioSums.from_units(zip(xc, yc, strict=True)),
        RatioSums.from_units(zip(xt, yt, strict=True)),
    )
    d, se, lift, lift_se = _numpy_comparison(xc, yc, xt, yt)
    assert result.absolute.difference == pytest.approx(d, rel=1e-6)
    assert result.absolute.standard_error == pytest.approx(se, rel=1e-6)
    assert result.relative.lift == pytest.approx(lift, rel=1e-6)
    assert result.relative.standard_error == pytest.approx(lift_se, rel=1e-6)
    z = d / se
    assert result.absolute.p_value == pytest.approx(
        2 * scipy_stats.t.sf(abs(z), result.absolute.degrees_of_freedom), rel=1e-6
    )


def test_call_level_sums_reduce_to_welch_and_the_delta_relative_lift():
    """With one call per unit the ratio tests are today's call-level tests exactly."""
    rng = np.random.default_rng(3)
    control, treatment = rng.gamma(2.0, 0.005, 800), rng.gamma(2.0, 0.0045, 900)
    sums = [RatioSums.from_calls(v.size, v.sum(), (v * v).sum()) for v in (control, treatment)]
    result = ratio_difference(*sums, alpha=0.05)
    means = [
        MeanStats(n=v.size, sum=v.sum(), sum_squares=(v * v).sum()) for v in (control, treatment)
    ]
    welch = welch_t_test(*means)
    relative = relative_difference(*means)
    assert result.absolute.p_value == pytest.approx(welch.p_value, rel=1e-9)
    assert result.absolute.ci_low == pytest.approx(welch.ci_low, rel=1e-9)
    assert result.relative.lift == pytest.approx(relative.lift, rel=1e-9)
    assert result.relative.standard_error == pytest.approx(relative.standard_error, rel=1e-9)


def test_sequential_comparison_uses_the_confidence_sequence_over_units():
    """The sequential intervals are the confidence sequences of the same estimates over
    n_c + n_t units, and wider than the fixed ones."""
    rng = np.random.default_rng(5)
    xc, yc = _units(rng, 1000)
    xt, yt = _units(rng, 1000, lift=0.05)
    result = ratio_difference(
        RatioSums.from_units(zip(xc, yc, strict=True)),
        RatioSums.from_units(zip(xt, yt, strict=True)),
        sequential=True,
    )
    again = confidence_sequence(
        estimate=result.relative.lift,
        variance=result.relative.standard_error**2,
        n_total=2000,
    )
    assert result.sequential_relative.ci_low == pytest.approx(again.ci_low, rel=1e-12)
    assert result.sequential_absolute.ci_low < result.absolute.ci_low


def test_comparison_refuses_arms_without_units_or_calls():
    """Fewer than two units, or no denominator, is a StatsInputError naming the arm."""
    good = RatioSums(10, 20.0, 1.0, 50.0, 0.2, 3.0)
    with pytest.raises(StatsInputError, match="control"):
        ratio_difference(RatioSums(1, 1.0, 1.0, 1.0, 1.0, 1.0), good)
    with pytest.raises(StatsInputError, match="treatment"):
        ratio_difference(good, RatioSums(5, 0.0, 0.0, 0.0, 0.0, 0.0))
