"""What the report page says about a report dict (pure: no Django, no queries).

The statistics live in ``experiments``; this module turns their output into words a
reader acts on: the decision banner, intervals clipped to what each metric allows, and
how many more calls a guardrail needs before it can pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Decision status -> banner style.
DECISION_CSS = {
    "winner": "winner",
    "no winner yet": "pending",
    "guardrail failed": "failed",
    "invalid": "invalid",
}
DECISION_HEADLINES = {
    "winner": "Ship it: {arm} wins",
    "no winner yet": "Keep running: no winner yet",
    "guardrail failed": "Roll back: a guardrail failed",
    "invalid": "Do not trust this data: fix the setup first",
}
#: Every metric of the report is non-negative, so a relative change is at least -100%.
RELATIVE_FLOOR = -1.0


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    clipped: bool = False


def clip_relative(low: float | None, high: float | None) -> Interval:
    """A relative interval cut at -100% (a cost cannot fall by more than all of it)."""
    if low is None or high is None:
        return Interval(low, high)
    clipped = low < RELATIVE_FLOOR
    return Interval(max(low, RELATIVE_FLOOR), max(high, RELATIVE_FLOOR), clipped)


def clip_absolute(low: float | None, high: float | None, *, proportion: bool) -> Interval:
    """A difference of two rates stays within [-1, 1]; other differences are left as they are."""
    if low is None or high is None or not proportion:
        return Interval(low, high)
    clipped = low < -1.0 or high > 1.0
    return Interval(max(low, -1.0), min(high, 1.0), clipped)


def decision_headline(decision: dict) -> str:
    template = DECISION_HEADLINES.get(decision["status"], decision["status"])
    return template.format(arm=decision.get("arm") or "-")


def decision_reasons(report: dict) -> list[str]:
    """The decision's reasons, where "about 0.0 more days" reads as what it means: the
    sample for the effect seen so far is in, and the effect is still not significant."""
    reasons = []
    for reason in report["decision"].get("reasons", []):
        if "about 0.0 more days" in reason:
            arm = reason.split(":", 1)[0]
            reason = (
                f"{arm}: the sample planned for the effect seen early is in and the difference is "
                "still not significant, so the true effect is smaller: keep running for a "
                "smaller effect, or conclude that the arms cost the same."
            )
        reasons.append(reason)
    return reasons


def calls_needed(*, harm: float, harm_high: float, margin: float, calls_per_arm: int) -> int | None:
    """More calls per arm before the upper bound of the harm can fall below the margin,
    if the observed harm holds: the interval narrows as 1/sqrt(n). None when the observed
    harm is at or above the margin (more data will not make it pass)."""
    half_width = harm_high - harm
    room = margin - harm
    if room <= 0 or calls_per_arm <= 0:
        return None
    if half_width <= room:
        return 0
    needed_total = calls_per_arm * (half_width / room) ** 2
    return max(0, math.ceil(round(needed_total - calls_per_arm, 6)))


def guardrail_need_text(guardrail: dict, calls_per_arm: int) -> str:
    """What an inconclusive guardrail waits for, in calls per arm."""
    if guardrail["status"] == "pass":
        return "within its margin"
    if guardrail["status"] == "fail":
        return "shown worse than its margin"
    result = guardrail.get("result") or {}
    if not result or result.get("harm_high") is None:
        return "needs calls with data in both arms first"
    needed = calls_needed(
        harm=result["harm"],
        harm_high=result["harm_high"],
        margin=guardrail["margin"],
        calls_per_arm=calls_per_arm,
    )
    if needed is None:
        return "the observed harm is above the margin; more data will not make it pass"
    return f"about {needed:,} more calls per arm if the observed harm holds"


def primary_lift(report: dict) -> dict | None:
    """The primary metric's relative lift of the decided (or first) treatment."""
    arm = report["decision"].get("arm")
    tests = [test for test in report.get("tests", []) if test.get("primary")]
    chosen = next((test for test in tests if test["treatment"] == arm), tests[0] if tests else None)
    lift = (chosen.get("relative") or {}).get("lift") if chosen else None
    if lift is None:
        return None
    interval = clip_relative(chosen.get("relative_ci_low"), chosen.get("relative_ci_high"))
    return {
        "arm": chosen["treatment"],
        "metric": chosen["metric"],
        "lift": lift,
        "low": interval.low,
        "high": interval.high,
    }
