"""Sample size, power and days to decision, against statsmodels."""

from __future__ import annotations

import pytest
from statsmodels.stats.power import NormalIndPower

from experiments.stats import StatsInputError, days_to_decision, power_at, sample_size_per_arm


@pytest.mark.parametrize("effect, sd, alpha, power", [(0.5, 2.0, 0.05, 0.8), (0.1, 1.0, 0.01, 0.9)])
def test_sample_size_matches_statsmodels(effect, sd, alpha, power):
    """With equal variances the per-arm n equals NormalIndPower().solve_power."""
    result = sample_size_per_arm(
        variance_control=sd**2, variance_treatment=sd**2, effect=effect, alpha=alpha, power=power
    )
    reference = NormalIndPower().solve_power(effect_size=effect / sd, alpha=alpha, power=power)
    assert result.per_arm_exact == pytest.approx(reference, rel=1e-6)


def test_power_matches_statsmodels():
    """Power at a given n equals NormalIndPower().power."""
    value = power_at(n_per_arm=300, variance_control=4.0, variance_treatment=4.0, effect=0.4)
    assert value == pytest.approx(
        NormalIndPower().power(effect_size=0.2, nobs1=300, alpha=0.05), rel=1e-9
    )


def test_rate_sample_size_uses_the_bernoulli_variances():
    """Detecting 15% -> 12% needs about 2,033 per arm (unpooled variances)."""
    result = sample_size_per_arm(
        variance_control=0.15 * 0.85, variance_treatment=0.12 * 0.88, effect=-0.03
    )
    assert 1950 < result.per_arm < 2100


def test_sequential_testing_needs_more_units():
    """Always-valid inference costs sample size."""
    fixed = sample_size_per_arm(variance_control=1.0, variance_treatment=1.0, effect=0.1)
    sequential = sample_size_per_arm(
        variance_control=1.0, variance_treatment=1.0, effect=0.1, sequential=True
    )
    assert sequential.per_arm > fixed.per_arm


def test_days_to_decision_takes_the_slowest_arm():
    """Days = max over arms of missing units / daily rate; 0 when there, None when stuck."""
    assert (
        days_to_decision(
            required_per_arm=1000, current_per_arm=[400, 700], daily_units_per_arm=[100, 50]
        )
        == 6.0
    )
    assert (
        days_to_decision(
            required_per_arm=100, current_per_arm=[400, 700], daily_units_per_arm=[0, 0]
        )
        == 0.0
    )
    assert (
        days_to_decision(
            required_per_arm=1000, current_per_arm=[400, 700], daily_units_per_arm=[0, 50]
        )
        is None
    )


def test_bad_input_raises():
    """Zero effect, negative variances, power outside (alpha, 1) are refused."""
    with pytest.raises(StatsInputError, match="effect"):
        sample_size_per_arm(variance_control=1.0, variance_treatment=1.0, effect=0.0)
    with pytest.raises(StatsInputError, match="variance_control"):
        sample_size_per_arm(variance_control=-1.0, variance_treatment=1.0, effect=0.1)
    with pytest.raises(StatsInputError, match="power"):
        sample_size_per_arm(variance_control=1.0, variance_treatment=1.0, effect=0.1, power=1.0)
    with pytest.raises(StatsInputError, match="one current count"):
        days_to_decision(required_per_arm=10, current_per_arm=[1], daily_units_per_arm=[1, 2])
