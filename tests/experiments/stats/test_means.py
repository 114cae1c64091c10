"""Welch's t-test and the delta-method relative lift, against scipy and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats._delta_method import NonlinearDeltaCov

from experiments.stats import MeanStats, StatsInputError, relative_difference, welch_t_test


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_welch_matches_scipy_on_raw_data(rng, alpha):
    """p-value, t, df and the interval equal scipy.stats.ttest_ind(equal_var=False)."""
    control = rng.lognormal(0, 1.0, 400)
    treatment = rng.lognormal(0.1, 1.2, 350)
    result = welch_t_test(
        MeanStats.from_values(control), MeanStats.from_values(treatment), alpha=alpha
    )
    reference = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    interval = reference.confidence_interval(confidence_level=1 - alpha)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert result.t_statistic == pytest.approx(reference.statistic, rel=1e-6)
    assert result.degrees_of_freedom == pytest.approx(reference.df, rel=1e-6)
    assert result.ci_low == pytest.approx(interval.low, rel=1e-6)
    assert result.ci_high == pytest.approx(interval.high, rel=1e-6)
    assert result.difference == pytest.approx(treatment.mean() - control.mean(), rel=1e-9)


def test_welch_matches_scipy_from_summary_statistics():
    """Same as ttest_ind_from_stats for a textbook summary (means 10/11, sd 2/3, n 30/40)."""
    control = MeanStats(n=30, sum=300.0, sum_squares=30 * 100 + 29 * 4)
    treatment = MeanStats(n=40, sum=440.0, sum_squares=40 * 121 + 39 * 9)
    result = welch_t_test(control, treatment)
    reference = scipy_stats.ttest_ind_from_stats(11, 3, 40, 10, 2, 30, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert result.t_statistic == pytest.approx(reference.statistic, rel=1e-6)


def test_zero_variance_arms_are_decided_without_nan():
    """Constant arms: p = 1 when equal, 0 when different; no NaN or infinity."""
    same = welch_t_test(MeanStats(5, 5.0, 5.0), MeanStats(5, 5.0, 5.0))
    assert same.p_value == 1.0 and same.t_statistic == 0.0
    different = welch_t_test(MeanStats(5, 5.0, 5.0), MeanStats(5, 10.0, 20.0))
    assert different.p_value == 0.0 and np.isfinite(different.t_statistic)


def test_relative_lift_standard_error_matches_statsmodels_delta_method(rng):
    """The lift's standard error equals statsmodels' numerical delta method for
    g(m_c, m_t) = m_t / m_c - 1 with independent arm means; the interval is +- z se."""
    control = rng.gamma(2.0, 0.005, 2000)
    treatment = rng.gamma(2.0, 0.001, 2100)
    result = relative_difference(MeanStats.from_values(control), MeanStats.from_values(treatment))
    means = np.array([control.mean(), treatment.mean()])
    covariance = np.diag(
        [control.var(ddof=1) / control.size, treatment.var(ddof=1) / treatment.size]
    )
    delta = NonlinearDeltaCov(lambda p: np.array([p[1] / p[0] - 1]), means, covariance)
    se = float(np.sqrt(delta.cov()[0, 0]))
    assert result.lift == pytest.approx(treatment.mean() / control.mean() - 1, rel=1e-9)
    assert result.standard_error == pytest.approx(se, rel=1e-6)
    z = scipy_stats.norm.ppf(0.975)
    assert result.ci_low == pytest.approx(result.lift - z * se, rel=1e-6)
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(result.lift) / se), rel=1e-6)


def test_bad_input_raises_one_error_type():
    """Too few observations, a zero control mean, a bad alpha or a wrong type are refused."""
    good = MeanStats(10, 10.0, 20.0)
    with pytest.raises(StatsInputError, match="n >= 2"):
        welch_t_test(MeanStats(1, 1.0, 1.0), good)
    with pytest.raises(StatsInputError, match="alpha"):
        welch_t_test(good, good, alpha=1.5)
    with pytest.raises(StatsInputError, match="control mean other than 0"):
        relative_difference(MeanStats(3, 0.0, 2.0), good)
    with pytest.raises(StatsInputError, match="MeanStats"):
        welch_t_test((10, 10.0, 20.0), good)
