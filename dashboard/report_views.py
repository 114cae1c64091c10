"""The experiment report page in the admin: the decision with its one-click actions, the
per-arm table, effects (forest plot), cumulative effect, ramp history, SRM, guardrails,
the success checklist, and the JSON export.

Routed by ``dashboard.admin`` at ``admin/dashboard/experiments/<key>/report/`` (inside
``admin_site.admin_view``); staff only. ``?format=json`` downloads the versioned export.
The actions (ship, roll back, ramp) live in ``dashboard.report_actions``.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse

from dashboard.report_actions import available_actions
from dashboard.report_charts import METRIC_LABELS, report_charts
from dashboard.report_presentation import (
    DECISION_CSS,
    clip_absolute,
    clip_relative,
    decision_headline,
    decision_reasons,
    guardrail_need_text,
)
from dashboard.selectors import ramp_history
from experiments.formatting import number, p_value, pct, usd
from experiments.models import Experiment
from experiments.reports import experiment_report

GUARDRAIL_LABELS = {
    "quality": "Quality",
    "error_rate": "Error rate rise",
    "latency_p95": "Latency p95 rise",
}


def _interval(low, high, formatter, clipped: bool = False) -> str:
    if low is None or high is None:
        return "-"
    return f"[{formatter(low)}, {formatter(high)}]{' (clipped)' if clipped else ''}"


def _ci(pair, formatter) -> str:
    low, high = pair or (None, None)
    return _interval(low, high, formatter)


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
                "units": f"{arm['assigned_units']:,}",
                "calls": f"{summary['calls']:,}",
                "cost": usd(summary["cost_per_request"]),
                "savings_vs_baseline": pct(summary["savings_vs_baseline"]),
                "quality": number(summary["quality"], 1),
                "confidence": number(summary["confidence"], 2),
                "latency": number(summary["latency_ms"], 0),
                "latency_p95": number(summary["latency_p95_ms"], 0),
                "latency_p95_ci": _ci(summary["latency_p95_ci"], lambda v: f"{v:,.0f}"),
                "escalation": pct(summary["escalation_rate"]),
                "escalation_ci": _ci(summary["escalation_rate_ci"], pct),
                "error": pct(summary["error_rate"], 2),
                "error_ci": _ci(summary["error_rate_ci"], lambda v: pct(v, 2)),
            }
        )
    return rows


def _difference_formatter(test: dict):
    if test["family"] == "proportion":
        return lambda value: pct(value, 2, signed=True)
    if test["metric"] == "cost_per_request":
        return lambda value: ("+" if value >= 0 else "-") + usd(abs(value))
    return lambda value: f"{value:+,.3f}"


def test_rows(report: dict) -> list[dict]:
    rows = []
    for test in report["tests"]:
        absolute = test.get("absolute") or {}
        relative = test.get("relative") or {}
        fmt = _difference_formatter(test)
        absolute_ci = clip_absolute(
            test.get("ci_low"), test.get("ci_high"), proportion=test["family"] == "proportion"
        )
        relative_ci = clip_relative(test.get("relative_ci_low"), test.get("relative_ci_high"))
        rows.append(
            {
                "metric": METRIC_LABELS.get(test["metric"], test["metric"]),
                "treatment": test["treatment"],
                "primary": test["primary"],
                "difference": fmt(absolute["difference"]) if absolute else "-",
                "interval": _interval(absolute_ci.low, absolute_ci.high, fmt, absolute_ci.clipped),
                "lift": pct(relative.get("lift"), 1, signed=True),
                "lift_interval": _interval(
                    relative_ci.low,
                    relative_ci.high,
                    lambda v: pct(v, 1, signed=True),
                    relative_ci.clipped,
                ),
                "p": p_value(test.get("p_value")),
                "p_adjusted": p_value(test.get("p_value_adjusted")),
                "significant": test.get("significant"),
                "error": test.get("error"),
            }
        )
    return rows


def _calls_per_arm(report: dict, arm_key: str, control_key: str | None) -> int:
    calls = {arm["key"]: arm["summary"]["calls"] for arm in report["arms"]}
    return min(calls.get(arm_key, 0), calls.get(control_key, calls.get(arm_key, 0)))


def guardrail_rows(report: dict) -> list[dict]:
    rows = []
    for guardrail in report["guardrails"]:
        result = guardrail.get("result") or {}
        rate = guardrail["guardrail"] == "error_rate"

        def fmt(value, rate=rate):
            return f"{value * 100:+.2f} pts" if rate else pct(value, 1, signed=True)

        rows.append(
            {
                "arm": guardrail["arm"],
                "label": GUARDRAIL_LABELS.get(guardrail["guardrail"], guardrail["guardrail"])
                + (f" ({guardrail['source']})" if guardrail.get("source") else ""),
                "margin": (
                    f"{guardrail['margin'] * 100:.2f} pts" if rate else pct(guardrail["margin"], 1)
                ),
                "harm": fmt(result["harm"]) if result else "-",
                "interval": _interval(result.get("harm_low"), result.get("harm_high"), fmt)
                if result
                else "-",
                "p": p_value(result.get("p_value")) if result else "-",
                "status": guardrail["status"],
                "need": guardrail_need_text(
                    guardrail,
                    _calls_per_arm(report, guardrail["arm"], guardrail.get("control")),
                ),
                "error": guardrail.get("error"),
            }
        )
    return rows


def checklist_rows(report: dict) -> list[dict]:
    rows = []
    for item in report.get("checklist", []):
        value = item["value"]
        if item["key"] == "avg_confidence":
            shown = number(value, 2)
        elif item["key"] == "no_error_increase":
            shown = "-" if value is None else f"{value * 100:+.2f} pts"
        elif item["key"] == "latency_impact":
            shown = pct(value, 1, signed=True)
        else:
            shown = pct(value)
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
                    "mean_difference": number(paired_t.get("mean_difference"), 4),
                    "interval": _interval(
                        paired_t.get("ci_low"), paired_t.get("ci_high"), lambda v: f"{v:+.4f}"
                    ),
                    "t_p": p_value(paired_t.get("p_value")),
                    "wilcoxon_p": p_value(wilcoxon.get("p_value")),
                    "error": entry.get("error"),
                }
            )
    return rows


def window_text(window: dict) -> str:
    """``Nov 26 08:00 to Dec 03 08:48 UTC`` (or from the first call when open-ended)."""

    def moment(text: str | None) -> str:
        return "the first call" if not text else f"{datetime.fromisoformat(text):%b %d %H:%M}"

    return f"{moment(window.get('start'))} to {moment(window.get('end'))} UTC"


def _json_download(experiment: Experiment, report: dict) -> HttpResponse:
    response = HttpResponse(
        json.dumps(report, indent=2, sort_keys=True) + "\n",
        content_type="application/json",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="experiment-{experiment.key}-report.json"'
    )
    return response


@staff_member_required
def experiment_report_view(request, key: str):
    """The report of experiment ``key`` (404 when unknown); ``?format=json`` downloads it."""
    experiment = Experiment.objects.filter(key=key).first()
    if experiment is None:
        raise Http404(f"No experiment with key {key!r}.")
    report = experiment_report(experiment=experiment)
    if request.GET.get("format") == "json":
        return _json_download(experiment, report)
    charts = report_charts(report, ramp_history=ramp_history(experiment=experiment))
    srm = report["srm"]
    context = {
        **admin.site.each_context(request),
        "title": f"Report: {experiment.name}",
        "experiment": experiment,
        "report": report,
        "decision": report["decision"],
        "decision_css": DECISION_CSS.get(report["decision"]["status"], "pending"),
        "decision_headline": decision_headline(report["decision"]),
        "decision_reasons": decision_reasons(report),
        "actions": available_actions(
            experiment=experiment, decision=report["decision"], user=request.user
        ),
        "arm_rows": arm_rows(report),
        "test_rows": test_rows(report),
        "guardrail_rows": guardrail_rows(report),
        "checklist_rows": checklist_rows(report),
        "srm": srm,
        "srm_p": p_value((srm.get("result") or {}).get("p_value")),
        "charts": charts,
        "charts_data": [{"key": chart["key"], "figure": chart["figure"]} for chart in charts],
        "paired_rows": paired_rows(report),
        "time_to_decision": report.get("time_to_decision") or {},
        "sequential": report["settings"]["sequential_testing"],
        "window_text": window_text(report.get("window") or {}),
    }
    return TemplateResponse(request, "dashboard/experiment_report.html", context)
