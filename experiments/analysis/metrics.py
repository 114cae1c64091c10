"""The metrics every analysis reads, and how each is defined at the call and the unit.

============== ============================================ ==================== ======
metric         per call (analysis unit: the call)           per unit: y_u / x_u   better
============== ============================================ ==================== ======
cost/request   cost_usd over every finished call            cost / calls          lower
quality        score level: final_score of calls with one   score sum / scored    higher
confidence     router confidence of calls that have one     sum / calls with one  higher
latency_ms     latency of calls that have one               sum / calls with one  lower
escalation     escalated calls / finished calls             escalated / calls     lower
error_rate     errored calls / finished calls               errors / calls        lower
cost/unit      (unit analysis only) cost per unit           cost_u, x_u = 1       lower
============== ============================================ ==================== ======

The ``quality`` metric is the *score level* (the score the answer gives itself), a
secondary test only: it is no guardrail. Quality is measured by quality signals
(agreement, judge, feedback: ``experiments.analysis.quality``), per unit
``x_u`` = the unit's calls with a signal of the experiment's source, ``y_u`` = their sum.

One definition of the escalation rate everywhere (dashboard, alerts, reports): escalated
calls over *all* finished calls, errors included, because an escalation costs money
whether or not the escalated call then fails. (The report used to divide escalated
successes by successes; the two differ by the error rate, about 1%.)
"""

from __future__ import annotations

PRIMARY_METRIC = "cost_per_request"
#: metric -> (family, direction: +1 higher is better, -1 lower is better, label)
METRICS: dict[str, tuple[str, int, str]] = {
    "cost_per_request": ("mean", -1, "Cost per request (USD)"),
    "quality": ("mean", +1, "Score level (final_score; not quality)"),
    "confidence": ("mean", +1, "Confidence"),
    "latency_ms": ("mean", -1, "Latency (ms)"),
    "escalation_rate": ("proportion", -1, "Escalation rate"),
    "error_rate": ("proportion", -1, "Error rate"),
}
#: Unit-level means (x_u = 1), analysed only when the analysis unit is not the call.
UNIT_MEANS: dict[str, tuple[str, int, str]] = {
    "cost_per_unit": ("mean", -1, "Cost per unit (USD)"),
}
#: metric -> (denominator x_u, numerator y_u): UnitRollup fields summed per unit.
UNIT_RATIOS: dict[str, tuple[str, str]] = {
    "cost_per_request": ("n", "cost_usd_sum"),
    "quality": ("quality_n", "quality_sum"),
    "confidence": ("confidence_n", "confidence_sum"),
    "latency_ms": ("latency_n", "latency_ms_sum"),
    "escalation_rate": ("n", "escalated_n"),
    "error_rate": ("n", "errors"),
}
#: The analysis units: the call (per-call tests, as before) or the randomization unit.
CALL = "call"
UNIT = "unit"


def metric_spec(metric: str) -> tuple[str, int, str]:
    """(family, direction, label) of a ratio metric or a unit mean; a metric fed in from
    outside (e.g. a quality signal) that is not listed is a higher-is-better mean."""
    return METRICS.get(metric) or UNIT_MEANS.get(metric) or ("mean", +1, metric)
