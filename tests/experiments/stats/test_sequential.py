"""Confidence sequences and always-valid p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.stats import StatsInputError, confidence_sequence
from experiments.stats.sequential import DEFAULT_TUNING_N, p_value_arrays, rho_for


def msprt_likelihood_ratio(estimate, variance, tau2):
    """Johari et al. (2017), normal mixture with mixing variance tau^2:
    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 est^2 / (2 V (V + tau^2)))."""
    return math.sqrt(variance / (variance + tau2)) * math.exp(
        tau2 * estimate**2 / (2 * variance * (variance + tau2))
    )


@pytest.mark.parametrize(
    "estimate, variance, n_total", [(0.5, 0.01, 500), (0.02, 1e-4, 8000), (-1.2, 0.3, 120)]
)
def test_p_value_is_the_reciprocal_msprt_likelihood_ratio(estimate, variance, n_total):
    """p = min(1, 1 / Lambda) of the mSPRT with tau^2 = rho^2 * variance * n_total."""
    result = confidence_sequence(estimate=estimate, variance=variance, n_total=n_total)
    tau2 = rho_for(0.05) ** 2 * variance * n_total
    expected = min(1.0, 1 / msprt_likelihood_ratio(estimate, variance, tau2))
    assert result.p_value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("estimate", [0.05, 0.1, 0.2, 0.3, 0.5])
def test_interval_excludes_zero_exactly_when_p_is_below_alpha(estimate):
    """The sequence and the p-value agree: 0 is outside the interval iff p < alpha."""
    result = confidence_sequence(estimate=estimate, variance=0.01, n_total=400)
    assert (result.ci_low > 0) == (result.p_value < 0.05)


def test_sequence_is_wider_than_the_fixed_interval():
    """Safety under peeking costs width: the sequence is wider than estimate +- 1.96 se."""
    result = confidence_sequence(estimate=0.0, variance=0.0004, n_total=5000)
    fixed = scipy_stats.norm.ppf(0.975) * 0.02
    assert result.ci_high - result.estimate > fixed


def test_rho_uses_the_waudby_smith_tuning():
    """rho^2 * N* = -2 ln(alpha) + ln(-2 ln(alpha) + 1)."""
    rho = rho_for(0.05, DEFAULT_TUNING_N)
    assert rho**2 * DEFAULT_TUNING_N == pytest.approx(
        -2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)
    )


def test_daily_looks_keep_the_false_positive_rate_under_alpha():
    """2,000 A/A experiments looked at on 28 days: always-valid p < 0.05 on any day in at
    most 5% of them (a naive z-test would exceed 20%)."""
    rng = np.random.default_rng(5)
    sims, days, per_day = 2000, 28, 50
    control = rng.normal(0, 1, (sims, days, per_day)).sum(axis=2).cumsum(axis=1)
    treatment = rng.normal(0, 1, (sims, days, per_day)).sum(axis=2).cumsum(axis=1)
    n = per_day * np.arange(1, days + 1)
    estimate = treatment / n - control / n
    variance = 2 / n
    sequential = p_value_arrays(estimate, variance, 2 * n, 0.05)
    naive = 2 * scipy_stats.norm.sf(np.abs(estimate) / np.sqrt(variance))
    assert np.mean((sequential < 0.05).any(axis=1)) <= 0.05
    assert np.mean((naive < 0.05).any(axis=1)) >= 0.20


def test_zero_variance_is_decided_without_nan():
    """Zero variance: p = 1 for a zero estimate, 0 otherwise."""
    assert confidence_sequence(estimate=0.0, variance=0.0, n_total=10).p_value == 1.0
    assert confidence_sequence(estimate=0.1, variance=0.0, n_total=10).p_value == 0.0


def test_bad_input_raises():
    """Negative variance, n < 1, non-finite estimates or bad tuning are refused."""
    with pytest.raises(StatsInputError, match="variance"):
        confidence_sequence(estimate=0.1, variance=-1.0, n_total=10)
    with pytest.raises(StatsInputError, match="n_total"):
        confidence_sequence(estimate=0.1, variance=1.0, n_total=0)
    with pytest.raises(StatsInputError, match="finite"):
        confidence_sequence(estimate=float("inf"), variance=1.0, n_total=10)
    with pytest.raises(StatsInputError, match="tuning_n"):
        rho_for(0.05, 0)
