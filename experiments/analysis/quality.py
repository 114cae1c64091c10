"""The quality guardrail: is the treatment's measured quality good enough? (pure)

The one implementation for the report (:func:`quality_guardrail` inside
``guardrail_checks``), the alerts and the export: quality is measured by the experiment's
chosen quality signal, never by ``final_score`` (that is the "score level" metric).

Quality is a ratio metric at the randomization unit (``experiments.stats.ratio``): per
unit, ``x`` = number of the arm's calls carrying a signal of the chosen source and ``y``
= the sum of those signals' values (0-1). Its estimate is ``sum(y) / sum(x)`` with the
delta-method variance over units. Three sources, three questions (harm > 0 is worse):

- ``agreement`` (treatment calls of shadow pairs, vs the control's answer): is mean
  agreement at least ``agreement_floor``? ``harm = floor - r_t``, margin 0;
- ``judge`` (treatment calls of shadow pairs: 1 win, 0.5 tie, 0 loss): is the win rate
  non-inferior to 0.5? ``harm = 0.5 - w_t``, margin ``judge_margin``;
- ``feedback`` (every arm's own calls): is the treatment's mean feedback no more than
  ``feedback_drop`` (a fraction) below the control's? ``harm = 1 - r_t / r_c``, whose
  delta-method variance is ``var_t / r_c^2 + r_t^2 var_c / r_c^4``.

Bounds, p-value and status are those of the other guardrails
(``experiments.stats.noninferiority``; always-valid with ``sequential``). With fewer than
``min_signals`` signals in an arm the status is ``inconclusive`` with "not enough quality
signals", never ``pass``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from experiments.stats.errors import StatsInputError
from experiments.stats.noninferiority import (
    INCONCLUSIVE,
    NonInferiorityTest,
    noninferiority_result,
)
from experiments.stats.ratio import RatioSums, ratio_estimate
from experiments.stats.results import AsDict
from experiments.stats.sequential import DEFAULT_TUNING_N

AGREEMENT = "agreement"
JUDGE = "judge"
FEEDBACK = "feedback"
SOURCES = (AGREEMENT, JUDGE, FEEDBACK)
NOT_ENOUGH = "not enough quality signals"


@dataclass(frozen=True)
class QualitySettings(AsDict):
    """What the quality guardrail depends on (all in the JSON export)."""

    alpha: float = 0.05
    sequential: bool = False
    tuning_n: float = DEFAULT_TUNING_N
    min_signals: int = 30
    agreement_floor: float = 0.9
    judge_margin: float = 0.05
    feedback_drop: float = 0.02


@dataclass(frozen=True)
class QualityCheck(AsDict):
    """The quality guardrail of one treatment: status pass / fail / inconclusive."""

    source: str
    status: str
    margin: float
    estimate: float | None
    control_estimate: float | None
    result: dict | None
    error: str | None


def _signals_short(sums: RatioSums, needed: int) -> bool:
    return sums.sum_x < needed or sums.n < 2


def _not_enough(source: str, arms: dict[str, RatioSums], needed: int) -> str:
    have = ", ".join(f"{name} {int(sums.sum_x)}" for name, sums in arms.items())
    return f"{NOT_ENOUGH} for {source}: {have}; at least {needed} per arm (and 2 units) needed"


def quality_check(
    *,
    source: str,
    control: RatioSums,
    treatment: RatioSums,
    settings: QualitySettings,
) -> QualityCheck:
    """The quality guardrail of ``treatment`` under ``source`` (module docstring)."""
    if source not in SOURCES:
        raise StatsInputError(f"unknown quality source {source!r}: use one of {SOURCES}")
    treatment_est = ratio_estimate(treatment)
    control_est = ratio_estimate(control)
    shown_t = None if math.isnan(treatment_est.value) else treatment_est.value
    shown_c = None if math.isnan(control_est.value) else control_est.value
    margin = {AGREEMENT: 0.0, JUDGE: settings.judge_margin, FEEDBACK: settings.feedback_drop}[
        source
    ]
    needed = settings.min_signals
    arms = {"treatment": treatment}
    if source == FEEDBACK:
        arms = {"control": control, "treatment": treatment}

    def inconclusive(reason: str) -> QualityCheck:
        return QualityCheck(source, INCONCLUSIVE, margin, shown_t, shown_c, None, reason)

    if any(_signals_short(sums, needed) for sums in arms.values()):
        return inconclusive(_not_enough(source, arms, needed))
    n_total = treatment.n
    if source == AGREEMENT:
        harm = settings.agreement_floor - treatment_est.value
        variance = treatment_est.variance
        method = f"agreement vs floor {settings.agreement_floor} (delta method over units)"
    elif source == JUDGE:
        harm = 0.5 - treatment_est.value
        variance = treatment_est.variance
        method = "judge win rate vs 0.5 (delta method over units)"
    else:
        if not control_est.value > 0:
            return inconclusive("the control's mean feedback is 0: a relative drop is undefined")
        ratio_c, ratio_t = control_est.value, treatment_est.value
        harm = 1.0 - ratio_t / ratio_c
        variance = (
            treatment_est.variance / ratio_c**2 + ratio_t**2 * control_est.variance / ratio_c**4
        )
        n_total = control.n + treatment.n
        method = "relative drop of mean feedback (delta method over units)"
    if math.isnan(variance):
        return inconclusive("the variance over units is undefined")
    test = NonInferiorityTest(margin, settings.alpha, settings.sequential, settings.tuning_n)
    result = noninferiority_result(harm, math.sqrt(variance), test, n_total, method)
    return QualityCheck(source, result.status, margin, shown_t, shown_c, result.as_dict(), None)


QUALITY_GUARDRAIL = "quality"


def quality_settings(settings: dict) -> QualitySettings:
    """The guardrail's settings from a report's settings: its alpha, sequential mode and
    tuning, ``settings["quality"]`` (min signals, agreement floor, judge margin) and the
    experiment's allowed quality drop as the feedback margin."""
    platform = settings["quality"]
    return QualitySettings(
        alpha=float(settings["alpha"]),
        sequential=bool(settings["sequential_testing"]),
        tuning_n=float(settings["tuning_n"]),
        min_signals=int(platform["min_signals"]),
        agreement_floor=float(platform["agreement_floor"]),
        judge_margin=float(platform["judge_margin"]),
        feedback_drop=float(settings["guardrail_quality_drop_pct"]) / 100.0,
    )


def quality_guardrail(
    *, control: RatioSums | None, treatment: RatioSums | None, settings: dict
) -> dict:
    """The "quality" guardrail entry (as ``guardrail_checks`` returns them) of the
    experiment's chosen signal (``settings["quality_signal"]``) on each arm's unit-level
    sums of that signal; its inputs recompute it from an exported file alone."""
    source = settings["quality_signal"]
    control, treatment = control or RatioSums(), treatment or RatioSums()
    checked = quality_settings(settings)
    check = quality_check(source=source, control=control, treatment=treatment, settings=checked)
    return {
        "guardrail": QUALITY_GUARDRAIL,
        "margin": check.margin,
        "inputs": {
            "source": source,
            "control": control.as_dict(),
            "treatment": treatment.as_dict(),
            "settings": checked.as_dict(),
        },
        "result": check.result,
        "status": check.status,
        "error": check.error,
        "source": source,
        "estimate": check.estimate,
        "control_estimate": check.control_estimate,
    }
