"""The one analysis layer: sufficient statistics in, tests, guardrails, SRM and the
decision out. Pure Python (no Django; an import-linter contract enforces it), read alike
by the winner report (``experiments.reports``), the alerts (``experiments.alerts``), the
dashboard (through the report) and the export, so a report and an alert can never
disagree.

- ``metrics``: the metrics, their definitions at the call and at the unit;
- ``sums``: per-arm call-level sums (:class:`CallSums`) and unit-level RatioSums;
- ``comparisons``: the test of one metric (call level, unit level by the delta method,
  CUPED) and Holm-Bonferroni;
- ``guardrails``: the guardrails; ``quality``: the quality guardrail of the experiment's
  quality signal (agreement floor, judge win rate, feedback drop) on unit-level sums;
  ``srm``: sample-ratio mismatch;
- ``decision``: the decision rule.

Quality signals enter as per-arm :class:`~experiments.stats.ratio.RatioSums` of the
chosen source (``guardrail_checks(control_quality=..., treatment_quality=...)``);
``final_score`` is only the "score level" metric. Another metric from elsewhere plugs in
as per-arm RatioSums through
:func:`~experiments.analysis.comparisons.compare_ratio_metric`.
"""

from experiments.analysis.comparisons import (
    adjust_families,
    compare_cuped_metric,
    compare_metric,
    compare_ratio_metric,
)
from experiments.analysis.decision import GUARDRAIL_FAILED, INVALID, NO_WINNER_YET, WINNER, decide
from experiments.analysis.guardrails import guardrail_checks, latency_quantile
from experiments.analysis.metrics import CALL, METRICS, PRIMARY_METRIC, UNIT
from experiments.analysis.quality import (
    NOT_ENOUGH,
    QUALITY_GUARDRAIL,
    SOURCES,
    QualitySettings,
    quality_check,
    quality_guardrail,
    quality_settings,
)
from experiments.analysis.srm import SRM_MIN_EXPECTED, srm_check, srm_p_value
from experiments.analysis.sums import CallSums, unit_statistics

__all__ = [
    "CALL",
    "GUARDRAIL_FAILED",
    "INVALID",
    "NOT_ENOUGH",
    "QUALITY_GUARDRAIL",
    "SOURCES",
    "QualitySettings",
    "METRICS",
    "NO_WINNER_YET",
    "PRIMARY_METRIC",
    "SRM_MIN_EXPECTED",
    "UNIT",
    "WINNER",
    "CallSums",
    "adjust_families",
    "compare_cuped_metric",
    "compare_metric",
    "compare_ratio_metric",
    "decide",
    "guardrail_checks",
    "latency_quantile",
    "quality_check",
    "quality_guardrail",
    "quality_settings",
    "srm_check",
    "srm_p_value",
    "unit_statistics",
]
