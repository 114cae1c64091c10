"""Guardrail non-inferiority tests: pass, fail or inconclusive against a margin."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats import proportion as sm_proportion

from experiments.stats import (
    MeanStats,
    ProportionStats,
    StatsInputError,
    quantile_ci,
    quantile_ratio_noninferiority,
    rate_rise_noninferiority,
    relative_difference,
    relative_mean_noninferiority,
)


def quality(rng, mean, n):
    return MeanStats.from_values(rng.normal(mean, 10, n))


def test_equal_quality_on_many_calls_passes(rng):
    """Equal means on 20,000 calls per arm show the drop is under 2%."""
    result = relative_mean_noninferiority(
        quality(rng, 75, 20000), quality(rng, 75, 20000), margin=0.02
    )
    assert result.status == "pass" and result.p_value < 0.05


def test_a_ten_percent_drop_fails_a_two_percent_margin(rng):
    """A 10% quality drop on 5,000 calls rules the 2% margin out: fail."""
    result = relative_mean_noninferiority(
        quality(rng, 75, 5000), quality(rng, 67.5, 5000), margin=0.02
    )
    assert result.status == "fail"
    assert result.harm == pytest.approx(0.10, abs=0.01)


def test_few_calls_are_inconclusive(rng):
    """30 calls per arm cannot show anything within 2%."""
    result = relative_mean_noninferiority(quality(rng, 75, 30), quality(rng, 75, 30), margin=0.02)
    assert result.status == "inconclusive"


def test_fixed_quality_bound_is_the_one_sided_delta_method_bound(rng):
    """harm_high = -lift + z_{0.95} se, with lift and se from the relative difference."""
    control, treatment = quality(rng, 75, 3000), quality(rng, 74.5, 3000)
    result = relative_mean_noninferiority(control, treatment, margin=0.02)
    lift = relative_difference(control, treatment)
    assert result.harm_high == pytest.approx(
        -lift.lift + scipy_stats.norm.ppf(0.95) * lift.standard_error, rel=1e-9
    )
    assert result.p_value == pytest.approx(
        scipy_stats.norm.cdf((-lift.lift - 0.02) / lift.standard_error), rel=1e-9
    )


def test_error_rate_p_value_matches_statsmodels_wald_test():
    """The fixed error-rate p-value equals test_proportions_2indep(method='wald',
    value=margin, alternative='smaller'); the bound is Newcombe's at 90%."""
    control, treatment = ProportionStats(4000, 80), ProportionStats(4000, 90)
    result = rate_rise_noninferiority(control, treatment, margin=0.01)
    reference = sm_proportion.test_proportions_2indep(
        90, 4000, 80, 4000, value=0.01, method="wald", compare="diff", alternative="smaller"
    )
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    low, high = sm_proportion.confint_proportions_2indep(
        90, 4000, 80, 4000, method="newcomb", alpha=0.10
    )
    assert (result.harm_low, result.harm_high) == pytest.approx((low, high), abs=1e-12)
    assert result.status == "pass"


def test_a_big_error_rise_fails():
    """1% -> 8% errors on 3,000 calls each fails a 1-point margin, fixed or sequential."""
    for sequential in (False, True):
        result = rate_rise_noninferiority(
            ProportionStats(3000, 30),
            ProportionStats(3000, 240),
            margin=0.01,
            sequential=sequential,
        )
        assert result.status == "fail"


def test_zero_errors_still_get_a_sequential_width():
    """With no errors anywhere, the sequential bound is still positive (adjusted rates)."""
    result = rate_rise_noninferiority(
        ProportionStats(50, 0), ProportionStats(50, 0), margin=0.01, sequential=True
    )
    assert result.harm_high > 0 and result.status == "inconclusive"


def test_sequential_is_more_cautious_than_fixed(rng):
    """The confidence-sequence bound is wider than the fixed one."""
    control, treatment = quality(rng, 75, 4000), quality(rng, 75, 4000)
    fixed = relative_mean_noninferiority(control, treatment, margin=0.02)
    sequential = relative_mean_noninferiority(control, treatment, margin=0.02, sequential=True)
    assert sequential.harm_high > fixed.harm_high
    assert sequential.p_value >= fixed.p_value


def test_latency_p95_ratio(rng):
    """A 30% slower p95 on 5,000 calls fails a 10% margin; equal latency passes."""
    base = quantile_ci(rng.lognormal(6.5, 0.5, 5000), 0.95)
    slower = quantile_ci(rng.lognormal(6.5 + np.log(1.3), 0.5, 5000), 0.95)
    same = quantile_ci(rng.lognormal(6.5, 0.5, 5000), 0.95)
    assert quantile_ratio_noninferiority(base, slower, margin=0.10).status == "fail"
    passed = quantile_ratio_noninferiority(base, same, margin=0.10)
    assert passed.status == "pass"
    assert passed.harm == pytest.approx(same.estimate / base.estimate - 1, rel=1e-9)


def test_bad_input_raises(rng):
    """Negative margins, zero control means and quantiles without intervals are refused."""
    with pytest.raises(StatsInputError, match="margin"):
        relative_mean_noninferiority(quality(rng, 75, 10), quality(rng, 75, 10), margin=-0.1)
    with pytest.raises(StatsInputError, match="control mean"):
        relative_mean_noninferiority(MeanStats(3, 0.0, 1.0), quality(rng, 75, 10), margin=0.02)
    tiny = quantile_ci([1.0, 2.0, 3.0], 0.95)
    with pytest.raises(StatsInputError, match="no usable interval"):
        quantile_ratio_noninferiority(tiny, tiny, margin=0.1)
