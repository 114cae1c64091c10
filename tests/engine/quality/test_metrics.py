"""RouteLLM metrics against small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from routing_platform.engine.quality.metrics import (
    MetricsError,
    apgr,
    call_performance_threshold,
    evaluate_scores,
    quality_curve,
    savings_at_quality,
)

# Four rows ranked 0..3 by score. Gains (strong - weak) in that order: 1, 0, 0, 1.
SCORES = np.array([4.0, 3.0, 2.0, 1.0])
STRONG = np.array([1, 1, 0, 1])
WEAK = np.array([0, 1, 0, 0])


def test_curve_quality_and_pgr_by_hand():
    """q(k/4) = (1 + cumulative gain) / 4 and PGR = (q - 0.25) / 0.5."""
    curve = quality_curve(SCORES, STRONG, WEAK)
    assert curve.weak_quality == 0.25 and curve.strong_quality == 0.75
    np.testing.assert_allclose(curve.strong_share, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(curve.quality, [0.25, 0.5, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(curve.pgr, [0, 0.5, 0.5, 0.5, 1])


def test_apgr_is_the_trapezoid_area_under_pgr():
    """0.25 * (0/2 + 0.5 + 0.5 + 0.5 + 1/2) = 0.5."""
    assert apgr(quality_curve(SCORES, STRONG, WEAK)) == pytest.approx(0.5)


def test_cpt_interpolates_the_first_crossing():
    """CPT50 is reached at 1 of 4 calls; CPT80 lies 60% of the way from 3/4 to 4/4."""
    curve = quality_curve(SCORES, STRONG, WEAK)
    assert call_performance_threshold(curve, 0.5) == pytest.approx(0.25)
    assert call_performance_threshold(curve, 0.8) == pytest.approx(0.9)


def test_savings_at_95_percent_route_and_cascade():
    """95% of 0.75 = 0.7125 is reached at c = 0.9625; cascade also pays the weak call."""
    route = savings_at_quality(quality_curve(SCORES, STRONG, WEAK), 0.95)
    assert route["strong_share"] == pytest.approx(0.9625)
    assert route["quality"] == pytest.approx(0.7125)
    assert route["savings"] == pytest.approx(1 - (0.9625 * 24.7 + 0.0375 * 0.24) / 24.7)
    cascade = savings_at_quality(quality_curve(SCORES, STRONG, WEAK, mode="cascade"), 0.95)
    assert cascade["savings"] == pytest.approx(1 - (0.9625 * 24.7 + 0.24) / 24.7)


def test_weak_model_already_good_enough_means_no_strong_calls():
    """When the weak model reaches 95% of the strong quality, the share is 0."""
    strong = np.array([1, 1, 1, 1, 0])
    weak = np.array([1, 1, 1, 1, 1])
    result = savings_at_quality(quality_curve(np.arange(5.0), strong, weak), 0.95)
    assert result["strong_share"] == 0.0
    assert result["savings"] == pytest.approx(1 - 0.24 / 24.7)


def test_ties_give_the_expected_curve_of_random_tie_breaking():
    """A constant score is exactly random routing: APGR 0.5, a straight PGR line."""
    strong = np.array([1, 0, 1, 1, 0, 1])
    weak = np.array([0, 0, 1, 0, 0, 0])
    curve = quality_curve(np.zeros(6), strong, weak)
    np.testing.assert_allclose(curve.pgr, np.linspace(0, 1, 7))
    assert apgr(curve) == pytest.approx(0.5)


def test_partial_ties_interpolate_inside_the_tied_group():
    """Rows 0 and 1 tie (gains 1 and 0): after one call the expected gain is 0.5."""
    scores = np.array([1.0, 1.0, 0.0])
    strong = np.array([1, 0, 1])
    weak = np.array([0, 0, 0])
    curve = quality_curve(scores, strong, weak)
    np.testing.assert_allclose(curve.quality * 3, [0, 0.5, 1, 2])


def test_oracle_beats_random_and_reverse_oracle_is_worst():
    """Ranking by the true gain gives APGR > 1 here; the reverse ranking < 0.5."""
    rng = np.random.default_rng(0)
    strong = (rng.random(500) < 0.8).astype(float)
    weak = (rng.random(500) < 0.6).astype(float)
    oracle = evaluate_scores(strong - weak, strong, weak)
    reverse = evaluate_scores(weak - strong, strong, weak)
    assert oracle.apgr > 1.0
    assert reverse.apgr < 0.5
    assert oracle.cpt50 < reverse.cpt50


def test_per_row_costs_replace_the_default_prices():
    """With total-cost columns the savings use each row's own prices."""
    strong_cost = np.array([10.0, 10.0, 10.0, 10.0])
    weak_cost = np.array([1.0, 1.0, 1.0, 1.0])
    curve = quality_curve(
        SCORES, STRONG, WEAK, strong_cost_usd=strong_cost, weak_cost_usd=weak_cost
    )
    np.testing.assert_allclose(curve.relative_cost, [0.1, 0.325, 0.55, 0.775, 1.0])


def test_scores_with_1_to_10_judge_values_work():
    """MT-Bench-style scores (not 0/1) are averaged like any other quality."""
    strong = np.array([9.0, 8.0, 7.0, 9.0])
    weak = np.array([3.0, 8.0, 6.0, 9.0])
    metrics = evaluate_scores(np.array([3.0, 2.0, 1.0, 0.0]), strong, weak)
    assert metrics.strong_quality == pytest.approx(8.25)
    assert metrics.apgr > 0.5


@pytest.mark.parametrize(
    ("scores", "strong", "weak", "message"),
    [
        ([1.0, 2.0], [1, 0], [1, 0], "same mean quality"),
        ([1.0], [1, 0], [0, 0], "differ in length"),
        ([np.nan, 1.0], [1, 0], [0, 0], "row 1"),
        ([], [], [], "no rows"),
    ],
)
def test_undefined_inputs_raise_metrics_error(scores, strong, weak, message):
    """Inputs where PGR is undefined are refused with a reason."""
    with pytest.raises(MetricsError, match=message):
        evaluate_scores(np.array(scores), np.array(strong), np.array(weak))


def test_unknown_mode_is_refused():
    """Only route and cascade exist."""
    with pytest.raises(MetricsError, match="mode"):
        quality_curve(SCORES, STRONG, WEAK, mode="parallel")
