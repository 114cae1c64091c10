"""The report's quality data: loaded with the rest of the report, analysed by
``experiments.analysis.quality``.

:func:`quality_data_load` reads (a fixed number of queries) for every source (agreement,
judge, feedback) each arm's unit-level sums (:class:`~experiments.stats.ratio.RatioSums`)
of the phase, its coverage (the share of the arm's calls that carry a signal), the
judge's cost, the chosen signal by day and how often judge and feedback agree.
:func:`quality_section` (no queries) turns that into ``report["quality"]`` with each
treatment's check per source. The "quality" guardrail itself is computed inside the
report build by ``experiments.analysis.guardrails.guardrail_checks`` from the same sums,
so the decision includes it; the alerts use the same function on the same sums
(:func:`quality_platform_settings` and ``selectors_quality.quality_sums``).
Every input of the checks is in the section, so
``experiments.analysis.quality.quality_check`` recomputes them from an exported file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings as django_settings

from experiments.analysis.quality import SOURCES, quality_check, quality_settings
from experiments.models import Experiment, Phase
from experiments.selectors_quality import (
    SignalCoverage,
    arm_calls,
    judge_feedback_agreement,
    quality_by_day,
    quality_coverage,
    quality_sums_by_source,
)
from experiments.stats.ratio import RatioSums, ratio_estimate


def quality_platform_settings() -> dict:
    """The platform's QUALITY_* settings the guardrail reads (``settings["quality"]`` of a
    report; the experiment's ``guardrail_quality_drop_pct`` is the feedback margin)."""
    return {
        "min_signals": int(django_settings.QUALITY_MIN_SIGNALS),
        "agreement_floor": float(django_settings.QUALITY_AGREEMENT_FLOOR),
        "judge_margin": float(django_settings.QUALITY_JUDGE_MARGIN),
    }


@dataclass
class QualityData:
    """What the report reads about quality signals (see the module docstring)."""

    #: source -> arm key -> unit-level sums of the phase's signals.
    sums_by_source: dict[str, dict[str, RatioSums]] = field(default_factory=dict)
    #: source -> arm key -> coverage and cost.
    coverage: dict[str, dict[str, SignalCoverage]] = field(default_factory=dict)
    by_day: list[dict] = field(default_factory=list)
    judge_feedback_agreement: dict = field(default_factory=dict)

    def sums(self, source: str, arm_key: str) -> RatioSums | None:
        return self.sums_by_source.get(source, {}).get(arm_key)


def quality_data_load(
    *,
    experiment: Experiment,
    phase: Phase | None,
    arm_keys: list[str],
    window_start: datetime | None,
    window_end: datetime,
) -> QualityData:
    """The quality signals of the phase (sums, coverage) and of the experiment (by day,
    judge vs feedback), a fixed number of queries."""
    phase_id = phase.pk if phase is not None else None
    # Coverage's denominator: each arm's finished calls, shadows included, from the
    # rollups of the report's window (no scan of the calls table).
    calls = arm_calls(experiment=experiment, window_start=window_start, window_end=window_end)
    calls_by_arm = {key: calls.get(key, 0) for key in arm_keys}
    return QualityData(
        sums_by_source=quality_sums_by_source(experiment=experiment, phase_id=phase_id),
        coverage=quality_coverage(
            experiment=experiment, calls_by_arm=calls_by_arm, phase_id=phase_id
        ),
        by_day=quality_by_day(experiment=experiment, source=experiment.quality_signal),
        judge_feedback_agreement=judge_feedback_agreement(experiment=experiment),
    )


def _mean(sums: RatioSums) -> float | None:
    value = ratio_estimate(sums).value
    return None if math.isnan(value) else value


def quality_section(
    *, data: QualityData, settings: dict, arm_keys: list[str], control: str
) -> dict:
    """Per source: per-arm sums and coverage, and each treatment's check (JSON-ready; no
    queries)."""
    checked = quality_settings(settings)
    signals: dict[str, dict] = {}
    for source in SOURCES:
        sums = data.sums_by_source.get(source, {})
        coverage = data.coverage.get(source, {})
        arms = {
            key: {
                "sums": sums.get(key, RatioSums()).as_dict(),
                "mean": _mean(sums.get(key, RatioSums())),
                **coverage[key].as_dict(),
            }
            for key in arm_keys
            if key in coverage
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
                    settings=checked,
                ).as_dict()
        signals[source] = {"arms": arms, "checks": checks}
    judge_cost = sum(arm["cost_usd"] for arm in signals["judge"]["arms"].values())
    return {
        "signal": settings["quality_signal"],
        "settings": checked.as_dict(),
        "signals": signals,
        "measuring_cost_usd": {"judge": judge_cost},
        "by_day": data.by_day,
        "judge_feedback_agreement": data.judge_feedback_agreement,
    }
