"""The experiment report page in the admin: decision, per-arm table, effects (forest
plot), cumulative effect, SRM, guardrails, the success checklist, and the JSON export.

Routed by ``dashboard.admin`` at ``admin/dashboard/experiments/<key>/report/`` (inside
``admin_site.admin_view``); staff only. ``?format=json`` downloads the versioned export.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse

from dashboard.report_charts import METRIC_LABELS, report_charts

DECISION_CSS = {
    "winner": "winner",
    "no winner yet": "pending",
    "guardrail failed": "failed",
    "invalid": "invalid",
}
GUARDRAIL_LABELS = {
    "quality": "Quality drop",
    "error_rate": "Error rate rise",
    "latency_p95": "Latency p95 rise",
}


def _pct(value, places: int = 1, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.{places}f}%" if signed else f"{value * 100:.{places}f}%"


def _num(value, places: int = 3) -> str:
    return "-" if value is None else f"{value:,.{places}f}"


def _usd(value) -> str:
    return "-" if value is None else f"${value:,.6f}"


def _interval(low, high, formatter) -> str:
    if low is None or high is None:
        return "-"
    return f"[{formatter(low)}, {formatter(high)}]"


def _p(value) -> str:
    if value is None:
        return "-"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def arm_rows(report: dict) -> list[dict]:
    rows = []
    for arm in report["arms"]:
        summary = arm["summary"]
        rows.append(
            {
                "key": arm["key"],
                "name": arm["name"],
                "strategy": arm["strategy"],
                "is_control": arm["is_control"],
                "weight": arm["weight"],
                "units": arm["assigned_units"],
                "calls": summary["calls"],
                "cost": _usd(summary["cost_per_request"]),
                "savings_vs_baseline": _pct(summary["savings_vs_baseline"]),
                "quality": _num(summary["quality"], 2),
                "confidence": _num(summary["confidence"]),
                "latency": _num(summary["latency_ms"], 0),
                "latency_p95": _num(summary["latency_p95_ms"], 0),
                "latency_p95_ci": _interval(
                    *(summary["latency_p95_ci"] or [None, None]), lambda v: f"{v:,.0f}"
                ),
                "escalation": _pct(summary["escalation_rate"]),
                "escalation_ci": _interval(*(summary["escalation_rate_ci"] or [None, None]), _pct),
                "error": _pct(summary["error_rate"], 2),
                "error_ci": _interval(
                    *(summary["error_rate_ci"] or [None, None]), lambda v: _pct(v, 2)
                ),
            }
        )
    return rows


def test_rows(report: dict) -> list[dict]:
    rows = []
    for test in report["tests"]:
        absolute = test.get("absolute") or {}
        relative = test.get("relative") or {}
        rate = test["family"] == "proportion"
        money = test["metric"] == "cost_per_request"

        def fmt(value, rate=rate, money=money):
            if rate:
                return _pct(value, 2, signed=True)
            return f"{value:+.6f}" if money else f"{value:+,.3f}"

        rows.append(
            {
                "metric": METRIC_LABELS.get(test["metric"], test["metric"]),
                "treatment": test["treatment"],
                "primary": test["primary"],
                "difference": fmt(absolute["difference"]) if absolute else "-",
                "interval": _interval(test.get("ci_low"), test.get("ci_high"), fmt),
                "lift": _pct(relative.get("lift"), 1, signed=True),
                "lift_interval": _interval(
                    test.get("relative_ci_low"),
                    test.get("relative_ci_high"),
                    lambda v: _pct(v, 1, True),
                ),
                "p": _p(test.get("p_value")),
                "p_adjusted": _p(test.get("p_value_adjusted")),
                "significant": test.get("significant"),
                "error": test.get("error"),
            }
        )
    return rows


def guardrail_rows(report: dict) -> list[dict]:
    rows = []
    for guardrail in report["guardrails"]:
        result = guardrail.get("result") or {}
        rate = guardrail["guardrail"] == "error_rate"

        def fmt(value, rate=rate):
            return f"{value * 100:+.2f} pts" if rate else _pct(value, 1, True)

        rows.append(
            {
                "arm": guardrail["arm"],
                "label": GUARDRAIL_LABELS.get(guardrail["guardrail"], guardrail["guardrail"]),
                "margin": (
                    f"{guardrail['margin'] * 100:.2f} pts" if rate else _pct(guardrail["margin"], 1)
                ),
                "harm": fmt(result["harm"]) if result else "-",
                "interval": _interval(result.get("harm_low"), result.get("harm_high"), fmt)
                if result
                else "-",
                "p": _p(result.get("p_value")) if result else "-",
                "status": guardrail["status"],
                "error": guardrail.get("error"),
            }
        )
    return rows


def checklist_rows(report: dict) -> list[dict]:
    rows = []
    for item in report.get("checklist", []):
        value = item["value"]
        if item["key"] == "avg_confidence":
            shown = _num(value)
        elif item["key"] == "no_error_increase":
            shown = "-" if value is None else f"{value * 100:+.2f} pts"
        elif item["key"] == "latency_impact":
            shown = _pct(value, 1, signed=True)
        else:
            shown = _pct(value)
        status = "pending" if item["met"] is None else ("met" if item["met"] else "not met")
        rows.append({**item, "shown": shown, "status": status})
    return rows


def paired_rows(report: dict) -> list[dict]:
    rows = []
    for arm_key, metrics in (report.get("paired") or {}).items():
        for metric, entry in metrics.items():
            paired_t = entry.get("paired_t") or {}
            wilcoxon = entry.get("wilcoxon") or {}
            rows.append(
                {
                    "arm": arm_key,
                    "metric": METRIC_LABELS.get(metric, metric),
                    "pairs": entry["inputs"]["n"],
                    "mean_difference": _num(paired_t.get("mean_difference"), 4),
                    "interval": _interval(
                        paired_t.get("ci_low"), paired_t.get("ci_high"), lambda v: f"{v:+.4f}"
                    ),
                    "t_p": _p(paired_t.get("p_value")),
                    "wilcoxon_p": _p(wilcoxon.get("p_value")),
                    "error": entry.get("error"),
                }
            )
    return rows


@staff_member_required
def experiment_report_view(request, key: str):
    """The report of experiment ``key`` (404 when unknown); ``?format=json`` downloads it."""
    from experiments.models import Experiment
    from experiments.reports import experiment_report

    experiment = Experiment.objects.filter(key=key).first()
    if experiment is None:
        raise Http404(f"No experiment with key {key!r}.")
    report = experiment_report(experiment=experiment)
    if request.GET.get("format") == "json":
        response = HttpResponse(
            json.dumps(report, indent=2, sort_keys=True) + "\n",
            content_type="application/json",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="experiment-{experiment.key}-report.json"'
        )
        return response
    charts = report_charts(report)
    srm = report["srm"]
    context = {
        **admin.site.each_context(request),
        "title": f"Report: {experiment.name}",
        "experiment": experiment,
        "report": report,
        "decision": report["decision"],
        "decision_css": DECISION_CSS.get(report["decision"]["status"], "pending"),
        "arm_rows": arm_rows(report),
        "test_rows": test_rows(report),
        "guardrail_rows": guardrail_rows(report),
        "checklist_rows": checklist_rows(report),
        "srm": srm,
        "srm_p": _p((srm.get("result") or {}).get("p_value")),
        "charts": charts,
        "charts_data": [{"key": chart["key"], "figure": chart["figure"]} for chart in charts],
        "paired_rows": paired_rows(report),
        "time_to_decision": report.get("time_to_decision") or {},
        "sequential": report["settings"]["sequential_testing"],
    }
    return TemplateResponse(request, "dashboard/experiment_report.html", context)
