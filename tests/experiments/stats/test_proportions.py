"""Rate intervals and two-proportion tests, against statsmodels and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from experiments.stats import (
    ProportionStats,
    StatsInputError,
    clopper_pearson_interval,
    rate_interval,
    two_proportion_test,
    wilson_interval,
)


@pytest.mark.parametrize("successes, n", [(0, 20), (3, 20), (37, 200), (500, 1000), (999, 1000)])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_wilson_and_clopper_pearson_match_statsmodels(successes, n, alpha):
    """Wilson and exact intervals equal proportion_confint(method='wilson' / 'beta')."""
    stats = ProportionStats(n=n, successes=successes)
    wilson = wilson_interval(stats, alpha=alpha)
    exact = clopper_pearson_interval(stats, alpha=alpha)
    assert (wilson.ci_low, wilson.ci_high) == pytest.approx(
        proportion_confint(successes, n, alpha=alpha, method="wilson"), abs=1e-9
    )
    assert (exact.ci_low, exact.ci_high) == pytest.approx(
        proportion_confint(successes, n, alpha=alpha, method="beta"), abs=1e-9
    )


def test_rate_interval_is_exact_for_small_counts():
    """Fewer than 5 events (or non-events) switch to Clopper-Pearson."""
    assert rate_interval(ProportionStats(100, 2)).method == "clopper-pearson"
    assert rate_interval(ProportionStats(100, 98)).method == "clopper-pearson"
    assert rate_interval(ProportionStats(100, 20)).method == "wilson"


@pytest.mark.parametrize(
    "control, treatment", [((120, 1000), (90, 900)), ((15, 200), (30, 210)), ((0, 50), (4, 60))]
)
def test_newcombe_interval_matches_statsmodels(control, treatment):
    """The difference interval equals confint_proportions_2indep(method='newcomb')."""
    result = two_proportion_test(
        ProportionStats(control[1], control[0]), ProportionStats(treatment[1], treatment[0])
    )
    low, high = confint_proportions_2indep(
        treatment[0], treatment[1], control[0], control[1], method="newcomb", compare="diff"
    )
    assert result.ci_low == pytest.approx(low, abs=1e-9)
    assert result.ci_high == pytest.approx(high, abs=1e-9)


def test_pooled_z_test_matches_statsmodels():
    """Large counts use the pooled z-test, equal to proportions_ztest."""
    result = two_proportion_test(ProportionStats(1000, 120), ProportionStats(900, 90))
    statistic, p_value = proportions_ztest([90, 120], [900, 1000])
    assert result.test == "pooled z"
    assert result.z_statistic == pytest.approx(statistic, rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)


def test_small_counts_use_fishers_exact_test():
    """An expected cell below 5 switches the p-value to Fisher's exact test."""
    result = two_proportion_test(ProportionStats(40, 1), ProportionStats(40, 6))
    reference = scipy_stats.fisher_exact([[6, 34], [1, 39]])
    assert result.test == "fisher exact"
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_relative_rate_lift_matches_statsmodels_delta_method():
    """The relative lift's interval uses the delta-method se of p_t / p_c - 1."""
    result = two_proportion_test(ProportionStats(2000, 300), ProportionStats(2000, 240))
    p = np.array([0.15, 0.12])
    covariance = np.diag(p * (1 - p) / 2000)
    delta = NonlinearDeltaCov(lambda q: np.array([q[1] / q[0] - 1]), p, covariance)
    se = float(np.sqrt(delta.cov()[0, 0]))
    z = scipy_stats.norm.ppf(0.975)
    assert result.relative_lift == pytest.approx(-0.2, rel=1e-9)
    assert result.relative_ci_low == pytest.approx(-0.2 - z * se, rel=1e-6)
    assert result.relative_ci_high == pytest.approx(-0.2 + z * se, rel=1e-6)


def test_zero_control_rate_has_no_relative_lift():
    """With no control events the relative lift is undefined and reported as None."""
    result = two_proportion_test(ProportionStats(500, 0), ProportionStats(500, 3))
    assert result.relative_lift is None


def test_bad_input_raises_one_error_type():
    """Empty arms and wrong types are refused with StatsInputError."""
    with pytest.raises(StatsInputError, match="no trials"):
        two_proportion_test(ProportionStats(0, 0), ProportionStats(10, 1))
    with pytest.raises(StatsInputError, match="ProportionStats"):
        wilson_interval((10, 1))
    with pytest.raises(StatsInputError, match="alpha"):
        wilson_interval(ProportionStats(10, 1), alpha=0)
