"""Sample-ratio mismatch against scipy's chi-square test."""

from __future__ import annotations

import pytest
from scipy import stats as scipy_stats

from experiments.stats import StatsInputError, srm_test


def test_balanced_split_passes_and_matches_scipy():
    """5100/4900 under 50/50 is within chance (p = 0.0455) and equals scipy.chisquare."""
    result = srm_test([5100, 4900], [50, 50])
    assert result.p_value == pytest.approx(scipy_stats.chisquare([5100, 4900]).pvalue, rel=1e-9)
    assert result.mismatch is False


def test_uneven_weights_use_expected_counts():
    """Weights 20/80 set the expected counts; 2300/7700 is a mismatch (p < 0.001)."""
    result = srm_test([2300, 7700], [0.2, 0.8])
    reference = scipy_stats.chisquare([2300, 7700], [2000, 8000])
    assert result.expected == pytest.approx([2000, 8000])
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.mismatch is True


def test_three_arms_have_two_degrees_of_freedom():
    """k arms give k - 1 degrees of freedom."""
    result = srm_test([330, 340, 330], [1, 1, 1])
    assert result.degrees_of_freedom == 2
    assert result.p_value == pytest.approx(scipy_stats.chisquare([330, 340, 330]).pvalue, rel=1e-9)


def test_units_in_a_zero_weight_arm_are_a_mismatch():
    """An arm that should get nothing but got units is a mismatch by definition."""
    assert srm_test([100, 3], [1, 0]).mismatch is True


def test_no_units_is_not_a_mismatch():
    """Before any unit arrives there is nothing to test."""
    result = srm_test([0, 0], [50, 50])
    assert result.p_value == 1.0 and result.mismatch is False


def test_bad_input_raises():
    """Mismatched lengths, one arm, negative counts, all-zero weights are refused."""
    with pytest.raises(StatsInputError, match="one weight per arm"):
        srm_test([1, 2], [1])
    with pytest.raises(StatsInputError, match="at least 2 arms"):
        srm_test([1], [1])
    with pytest.raises(StatsInputError, match="negative"):
        srm_test([-1, 2], [1, 1])
    with pytest.raises(StatsInputError, match="positive"):
        srm_test([1, 2], [0, 0])
