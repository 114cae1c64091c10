"""The report's quality section and quality guardrail, from quality signals.

``quality_report_apply`` adds ``report["quality"]``: for every source (agreement, judge,
feedback) each arm's unit-level sums (:class:`~experiments.stats.ratio.RatioSums`), its
coverage (the share of the arm's calls that carry a signal), the judge's cost, and each
treatment's check; then it puts the check of the experiment's chosen signal
(``Experiment.quality_signal``) in place of the "quality" guardrail and decides again.
``final_score`` stays in the report only as the "score level" test, never as quality.
Every input of the checks is in the section, so ``experiments.stats.quality
.quality_check`` recomputes them from an exported file alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from django.conf import settings as django_settings

from experiments.models import Experiment, Phase
from experiments.selectors_quality import (
    arm_calls,
    judge_feedback_agreement,
    quality_by_day,
    quality_coverage,
    quality_sums_by_source,
)
from experiments.stats.quality import NOT_ENOUGH, SOURCES, QualitySettings, quality_check
from experiments.stats.ratio import RatioSums, ratio_estimate

QUALITY_GUARDRAIL = "quality"


def quality_settings(*, report_settings: dict, experiment: Experiment) -> QualitySettings:
    """The guardrail's settings: the report's alpha and sequential mode, the platform's
    QUALITY_* settings, and the experiment's allowed feedback drop."""
    return QualitySettings(
        alpha=float(report_settings["alpha"]),
        sequential=bool(report_settings["sequential_testing"]),
        tuning_n=float(report_settings["tuning_n"]),
        min_signals=int(django_settings.QUALITY_MIN_SIGNALS),
        agreement_floor=float(django_settings.QUALITY_AGREEMENT_FLOOR),
        judge_margin=float(django_settings.QUALITY_JUDGE_MARGIN),
        feedback_drop=float(experiment.guardrail_quality_drop_pct) / 100.0,
    )


def _phase_id(experiment: Experiment, report: dict) -> int | None:
    phase = report.get("phase")
    if not phase:
        return None
    return (
        Phase.objects.filter(experiment=experiment, number=phase["number"])
        .values_list("pk", flat=True)
        .first()
    )


def _mean(sums: RatioSums) -> float | None:
    value = ratio_estimate(sums).value
    return None if math.isnan(value) else value


def quality_section(*, report: dict, experiment: Experiment) -> dict:
    """Per source: per-arm sums and coverage, and each treatment's check (JSON-ready)."""
    phase_id = _phase_id(experiment, report)
    settings = quality_settings(report_settings=report["settings"], experiment=experiment)
    arm_keys = [arm["key"] for arm in report["arms"]]
    control = report.get("control")
    # Coverage's denominator: each arm's finished calls, shadows included, from the
    # rollups of the report's window (no scan of the calls table).
    window = report["window"]
    calls = arm_calls(
        experiment=experiment,
        window_start=datetime.fromisoformat(window["start"]) if window["start"] else None,
        window_end=datetime.fromisoformat(window["end"]),
    )
    calls_by_arm = {key: calls.get(key, 0) for key in arm_keys}
    coverage = quality_coverage(experiment=experiment, calls_by_arm=calls_by_arm, phase_id=phase_id)
    sums_by_source = quality_sums_by_source(experiment=experiment, phase_id=phase_id)
    signals: dict[str, dict] = {}
    for source in SOURCES:
        sums = sums_by_source.get(source, {})
        arms = {
            key: {
                "sums": sums.get(key, RatioSums()).as_dict(),
                "mean": _mean(sums.get(key, RatioSums())),
                **coverage[source][key].as_dict(),
            }
            for key in arm_keys
            if key in coverage[source]
        }
        checks = {}
        if control in arms:
            for key in arm_keys:
                if key == control:
                    continue
                checks[key] = quality_check(
                    source=source,
                    control=sums.get(control, RatioSums()),
                    treatment=sums.get(key, RatioSums()),
                    settings=settings,
                ).as_dict()
        signals[source] = {"arms": arms, "checks": checks}
    judge_cost = sum(arm["cost_usd"] for arm in signals["judge"]["arms"].values())
    return {
        "signal": experiment.quality_signal,
        "settings": settings.as_dict(),
        "signals": signals,
        "measuring_cost_usd": {"judge": judge_cost},
        "by_day": quality_by_day(experiment=experiment, source=experiment.quality_signal),
        "judge_feedback_agreement": judge_feedback_agreement(experiment=experiment),
    }


def _guardrail(arm_key: str, control: str, section: dict) -> dict:
    source = section["signal"]
    check = section["signals"][source]["checks"][arm_key]
    arms = section["signals"][source]["arms"]
    return {
        "arm": arm_key,
        "control": control,
        "guardrail": QUALITY_GUARDRAIL,
        "margin": check["margin"],
        "inputs": {
            "source": source,
            "control": arms.get(control, {}).get("sums"),
            "treatment": arms.get(arm_key, {}).get("sums"),
            "settings": section["settings"],
        },
        "result": check["result"],
        "status": check["status"],
        "error": check["error"],
        "source": source,
    }


def quality_report_apply(
    *, report: dict, experiment: Experiment, decide: Callable[[dict], dict]
) -> dict:
    """``report`` with its quality section, the signal-based quality guardrail in place
    of the final_score one, and the decision taken again (module docstring)."""
    if report.get("control") is None or len(report["arms"]) < 2:
        return report
    section = quality_section(report=report, experiment=experiment)
    report["quality"] = section
    control = report["control"]
    guardrails = []
    for guardrail in report["guardrails"]:
        if guardrail["guardrail"] == QUALITY_GUARDRAIL:
            guardrail = _guardrail(guardrail["arm"], control, section)
        guardrails.append(guardrail)
    report["guardrails"] = guardrails
    report["decision"] = decide(report)
    for guardrail in guardrails:
        if guardrail["guardrail"] == QUALITY_GUARDRAIL and NOT_ENOUGH in (guardrail["error"] or ""):
            report["decision"]["reasons"].append(f"{guardrail['arm']}: {guardrail['error']}.")
    return report
