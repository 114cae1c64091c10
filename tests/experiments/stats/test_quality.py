"""The quality guardrail over unit-level ratio sums (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.analysis.quality import NOT_ENOUGH, QualitySettings, quality_check
from experiments.stats import StatsInputError
from experiments.stats.ratio import RatioSums

FIXED = QualitySettings(alpha=0.05, sequential=False, min_signals=30)


def _units(rng, mean: float, units: int = 200, calls: int = 3) -> RatioSums:
    counts = rng.integers(1, calls + 1, units)
    return RatioSums.from_units(
        (float(n), float(np.clip(rng.normal(mean, 0.1, n), 0, 1).sum())) for n in counts
    )


def test_too_few_signals_is_inconclusive_with_the_reason_never_pass():
    """29 perfect agreement signals do not pass: "not enough quality signals"."""
    few = RatioSums.from_units([(1.0, 1.0)] * 29)
    check = quality_check(source="agreement", control=RatioSums(), treatment=few, settings=FIXED)
    assert check.status == "inconclusive"
    assert NOT_ENOUGH in check.error and "29" in check.error and "30" in check.error


def test_agreement_is_tested_against_the_floor():
    """Mean agreement 0.97 passes a 0.9 floor; 0.7 fails it."""
    rng = np.random.default_rng(1)
    good = quality_check(
        source="agreement", control=RatioSums(), treatment=_units(rng, 0.97), settings=FIXED
    )
    bad = quality_check(
        source="agreement", control=RatioSums(), treatment=_units(rng, 0.7), settings=FIXED
    )
    assert (good.status, bad.status) == ("pass", "fail")


def test_judge_win_rate_is_non_inferiority_against_half_minus_the_margin():
    """The harm is 0.5 - win rate; its one-sided bound is the delta-method one."""
    rng = np.random.default_rng(2)
    sums = _units(rng, 0.52)
    check = quality_check(source="judge", control=RatioSums(), treatment=sums, settings=FIXED)
    ratio = sums.sum_y / sums.sum_x
    var_x, var_y, cov = sums.covariances()
    variance = (var_y - 2 * ratio * cov + ratio**2 * var_x) / (sums.n * sums.mean_x**2)
    z = scipy_stats.norm.ppf(0.95)
    assert check.result["harm"] == pytest.approx(0.5 - ratio)
    assert check.result["harm_high"] == pytest.approx(0.5 - ratio + z * math.sqrt(variance))
    assert check.status == "pass" and check.margin == 0.05


def test_feedback_is_a_relative_drop_of_treatment_vs_control():
    """10% lower mean feedback fails a 2% margin and passes a 20% one."""
    rng = np.random.default_rng(3)
    control, treatment = _units(rng, 0.8, units=800), _units(rng, 0.72, units=800)
    strict = quality_check(source="feedback", control=control, treatment=treatment, settings=FIXED)
    loose = quality_check(
        source="feedback",
        control=control,
        treatment=treatment,
        settings=QualitySettings(sequential=False, feedback_drop=0.2),
    )
    assert strict.result["harm"] == pytest.approx(0.1, abs=0.02)
    assert (strict.status, loose.status) == ("fail", "pass")


def test_an_unknown_source_is_refused():
    with pytest.raises(StatsInputError):
        quality_check(source="vibes", control=RatioSums(), treatment=RatioSums(), settings=FIXED)
