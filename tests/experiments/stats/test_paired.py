"""Paired t and Wilcoxon for shadow pairs, against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.stats import MeanStats, StatsInputError, paired_t_test, wilcoxon_signed_rank


def test_paired_t_matches_scipy_ttest_rel(rng):
    """p, t and the interval equal scipy.stats.ttest_rel on the same pairs."""
    control = rng.normal(75, 8, 120)
    treatment = control + rng.normal(-0.8, 3, 120)
    result = paired_t_test(MeanStats.from_values(treatment - control))
    reference = scipy_stats.ttest_rel(treatment, control)
    interval = reference.confidence_interval()
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert result.t_statistic == pytest.approx(reference.statistic, rel=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-6)
    assert result.degrees_of_freedom == 119


def test_wilcoxon_exact_matches_scipy(rng):
    """Small samples without ties use the exact distribution, as scipy does."""
    differences = rng.normal(0.5, 1, 20)
    result = wilcoxon_signed_rank(differences)
    reference = scipy_stats.wilcoxon(differences, method="exact")
    assert result.method == "exact"
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.statistic == reference.statistic


def test_wilcoxon_large_sample_matches_the_normal_approximation(rng):
    """For 400 pairs the p-value is the normal approximation of W computed by hand:
    mean n(n+1)/4, variance n(n+1)(2n+1)/24, no continuity correction."""
    differences = rng.normal(0.1, 1, 400)
    result = wilcoxon_signed_rank(differences)
    ranks = scipy_stats.rankdata(np.abs(differences))
    w_plus = ranks[differences > 0].sum()
    n = differences.size
    z = (min(w_plus, n * (n + 1) / 2 - w_plus) - n * (n + 1) / 4) / np.sqrt(
        n * (n + 1) * (2 * n + 1) / 24
    )
    assert result.method == "asymptotic"
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.cdf(z), rel=1e-6)


def test_zero_differences_are_dropped():
    """Zero differences do not count; the rest are tested."""
    result = wilcoxon_signed_rank([0.0, 0.0, 1.0, 2.0, -0.5, 3.0])
    assert result.n == 6 and result.n_nonzero == 4


def test_constant_differences_are_decided_without_nan():
    """All pairs differ by the same amount: p = 0 (or 1 if that amount is 0)."""
    assert paired_t_test(MeanStats.from_values([0.5] * 10)).p_value == 0.0
    assert paired_t_test(MeanStats.from_values([0.0] * 10)).p_value == 1.0


def test_bad_input_raises():
    """Fewer than two pairs, only zero differences or NaN are refused."""
    with pytest.raises(StatsInputError, match="n >= 2"):
        paired_t_test(MeanStats.from_values([1.0]))
    with pytest.raises(StatsInputError, match="non-zero"):
        wilcoxon_signed_rank([0.0, 0.0])
    with pytest.raises(StatsInputError, match="finite"):
        wilcoxon_signed_rank([1.0, float("nan")])
