"""Confidence: logprobs, self-report, agreement, heuristics."""

from __future__ import annotations

import math

import pytest

from routing_platform.engine import confidence
from routing_platform.engine.arithmetic import arithmetic_checks


def test_logprobs_give_the_geometric_mean_probability():
    """exp(mean logprob): two tokens at p=0.9 and p=0.4 give 0.6."""
    value = confidence.from_logprobs([math.log(0.9), math.log(0.4)])
    assert value == pytest.approx(0.6)


def test_estimate_prefers_logprobs_and_names_the_method():
    """With logprobs the method says so and the value follows them."""
    estimate = confidence.estimate("Paris.", logprobs=[math.log(0.95)] * 3)
    assert estimate.method == "logprobs"
    assert estimate.value == pytest.approx(0.95)


def test_self_report_is_blended_with_logprobs():
    """Logprobs weigh 0.6 and the self-report 0.4."""
    estimate = confidence.estimate("ok", logprobs=[math.log(0.5)], self_reported=1.0)
    assert estimate.value == pytest.approx(0.7)
    assert estimate.method == "logprobs+self_report"


def test_heuristics_penalise_truncation_hedging_and_refusal():
    """Without model signals: truncated, hedged and refused answers score lower."""
    clean = confidence.estimate("The answer is 42.").value
    truncated = confidence.estimate("The answer is", finish_reason="length").value
    hedged = confidence.estimate("I'm not sure, it depends.").value
    refused = confidence.estimate("I cannot help with that.").value
    assert clean == pytest.approx(0.85)
    assert truncated < clean and hedged < clean and refused < hedged


def test_empty_answer_has_zero_confidence():
    """Nothing said, nothing to trust."""
    assert confidence.estimate("   ").value == 0.0


def test_agreement_is_one_when_members_agree_and_falls_as_they_diverge():
    """Identical scores -> 1; scores far apart -> low."""
    assert confidence.from_agreement([80, 80, 80]) == 1.0
    assert confidence.from_agreement([10, 90, 50]) < 0.3
    assert confidence.from_agreement([70]) == 0.5


def test_council_confidence_blends_self_report_and_agreement():
    """Half the members' mean confidence, half their agreement."""
    assert confidence.council_confidence([0.8, 0.8], [70, 70]) == pytest.approx(0.9)


def test_values_are_clamped_to_the_unit_interval():
    """Out-of-range or NaN inputs never escape [0, 1]."""
    assert confidence.clamp(3.0) == 1.0
    assert confidence.clamp(-1.0) == 0.0
    assert confidence.clamp(float("nan")) == 0.0
    assert 0.0 <= confidence.estimate("x", self_reported=7.0).value <= 1.0


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("15 + 25 = 40 cups in all.", 0),
        ("15 + 25 = 45 cups in all.", 1),
        ("So he runs 3 x 60 = <<3*60=180>>180 meters.", 0),
        ("$1,200 / 4 = $300 each; 100/3 = 33.33 per day.", 0),
        ("2 + 3 * 4 = 20", 1),  # the usual precedence: 14
        ("8 * 3 = 24, then 24 - 5 = 18 and 18 / 0 = 7", 1),  # 19; a division by zero is skipped
        ("x = 5 and y + 2 = 7", 0),  # algebra, not arithmetic
        ("Room 4-12 = the lab; 12cm + 3 = 15cm", 0),  # units glued on: not checked
    ],
)
def test_arithmetic_checks_recompute_the_answers_own_steps(text, errors):
    """Each plain `a op b = c` step is re-computed (parsed, never executed); wrong ones count."""
    assert arithmetic_checks(text)[1] == errors


def test_wrong_arithmetic_and_an_unfinished_long_answer_lower_confidence():
    """A wrong step costs 0.30 (below the 0.7 escalation threshold); a long answer cut off
    mid-sentence 0.15; a short answer without a full stop ("Paris") is not 'unfinished'."""
    right = confidence.estimate("15 + 25 = 40, so 40 cups.")
    wrong = confidence.estimate("15 + 25 = 45, so 45 cups.")
    assert wrong.value == pytest.approx(right.value - 0.30)
    assert wrong.value < 0.7 <= right.value
    assert ("arithmetic", -0.30) in wrong.signals
    cut = "Let's work it out step by step. " * 8 + "First the morning feed, which is"
    assert confidence.estimate(cut).value == pytest.approx(0.70)
    assert ("unfinished", -0.15) in confidence.estimate(cut).signals
    assert confidence.estimate("Paris").value == 0.85
    assert confidence.estimate(cut + " 15 cups.").value == 0.85
