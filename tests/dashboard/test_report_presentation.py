"""Report wording (dashboard.report_presentation): pure, no database."""

from __future__ import annotations

from dashboard import report_presentation as presentation


def test_relative_intervals_are_clipped_at_minus_100_percent():
    """A cost cannot fall by more than all of it: -125% becomes -100%, marked clipped."""
    interval = presentation.clip_relative(-1.25, -0.4)
    assert (interval.low, interval.high, interval.clipped) == (-1.0, -0.4, True)
    assert presentation.clip_relative(-0.5, 0.1).clipped is False


def test_rate_differences_stay_within_plus_minus_one():
    interval = presentation.clip_absolute(-1.2, 0.3, proportion=True)
    assert (interval.low, interval.high, interval.clipped) == (-1.0, 0.3, True)
    assert presentation.clip_absolute(-1.2, 0.3, proportion=False).low == -1.2


def test_calls_needed_scales_with_the_square_of_the_interval_ratio():
    """Half-width 0.04 with room 0.02 to the margin needs four times the calls: 3x more."""
    assert (
        presentation.calls_needed(harm=0.01, harm_high=0.05, margin=0.03, calls_per_arm=100) == 300
    )
    assert presentation.calls_needed(harm=0.01, harm_high=0.02, margin=0.03, calls_per_arm=100) == 0
    assert (
        presentation.calls_needed(harm=0.04, harm_high=0.05, margin=0.03, calls_per_arm=100) is None
    )


def test_inconclusive_guardrail_says_how_many_more_calls():
    guardrail = {
        "status": "inconclusive",
        "margin": 0.03,
        "result": {"harm": 0.01, "harm_high": 0.05},
    }
    assert presentation.guardrail_need_text(guardrail, 1000) == (
        "about 3,000 more calls per arm if the observed harm holds"
    )
    assert "within" in presentation.guardrail_need_text({"status": "pass"}, 10)


def test_zero_days_reason_says_the_effect_is_smaller_not_that_it_is_done():
    report = {
        "decision": {
            "status": "no winner yet",
            "reasons": ["smart: about 0.0 more days at the current traffic to detect it."],
        }
    }
    (reason,) = presentation.decision_reasons(report)
    assert "0.0 more days" not in reason and "smaller" in reason
    assert presentation.decision_headline({"status": "winner", "arm": "smart"}) == (
        "Ship it: smart wins"
    )
