"""The dashboard pages, rendered inside the admin (``dashboard.admin`` wires the URLs).

Thin: read the filter from the query string, ask ``router_dashboard`` for the data, hand
it to the pure chart module, render a template that extends ``admin/base_site.html``.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.contrib import messages
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from experiments.metrics import WINDOW_CHOICES, MetricsInputError, window_resolve
from experiments.models import AlertRule, CallRollup, Experiment
from routing_platform.routing.dashboard import experiment_key_of, router_dashboard

#: The window the page opens with: the last week, what a morning look needs.
DEFAULT_WINDOW = "7d"
_LEVEL_CSS = {"critical": "critical", "warning": "warning", "info": "info"}


def _usd(value: float | None, places: int = 2) -> str:
    if value is None:
        return "-"
    return f"${value:,.{places}f}"


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _cards(overview: dict) -> list[dict]:
    """The headline figures as label/value/hint triples."""
    cost_places = 4 if 0 < overview["total_cost_usd"] < 10 else 2
    return [
        {
            "label": "Requests",
            "value": f"{overview['total_requests']:,}",
            "hint": f"{overview['failed_requests']:,} failed",
        },
        {
            "label": "Cost savings",
            "value": f"{overview['cost_savings_percentage']:.1f}%",
            "hint": f"{_usd(overview['savings_usd'], cost_places)} saved",
            "key": "savings",
        },
        {
            "label": "Total cost",
            "value": _usd(overview["total_cost_usd"], cost_places),
            "hint": f"baseline {_usd(overview['baseline_cost_usd'], cost_places)}",
        },
        {
            "label": "Cost per request",
            "value": _usd(overview["cost_per_request_usd"], 5),
            "hint": "actual, USD",
        },
        {
            "label": "Avg confidence",
            "value": f"{overview['avg_confidence']:.3f}",
            "hint": "0-1, of the answering model",
            "key": "confidence",
        },
        {
            "label": "Escalation rate",
            "value": _pct(overview["escalation_rate"]),
            "hint": "to a stronger tier",
        },
        {"label": "Error rate", "value": _pct(overview["error_rate"]), "hint": "failed calls"},
        {
            "label": "Latency p50 / p95",
            "value": f"{_ms(overview['latency_p50_ms'])} / {_ms(overview['latency_p95_ms'])}",
            "hint": "estimated from histograms",
        },
    ]


def _table(breakdown: dict[str, dict]) -> list[dict]:
    return [
        {
            "name": name,
            "requests": f"{entry['requests']:,}",
            "share": _pct(entry["share"]),
            "cost": _usd(entry["cost_usd"], 4),
            "baseline": _usd(entry["baseline_cost_usd"], 4),
            "savings": f"{entry['cost_savings_percentage']:.1f}%",
            "per_request": _usd(entry["cost_per_request_usd"], 5),
            "confidence": f"{entry['avg_confidence']:.3f}",
            "escalation": _pct(entry["escalation_rate"]),
            "errors": _pct(entry["error_rate"]),
        }
        for name, entry in breakdown.items()
    ]


def report_url(key: str) -> str | None:
    try:
        return reverse("admin:dashboard_experiment_report", kwargs={"key": key})
    except NoReverseMatch:
        return None


def _experiment_links() -> list[dict]:
    experiments = Experiment.objects.only("key", "name", "status", "started_at").order_by(
        "-created_at"
    )[:25]
    return [
        {
            "key": experiment.key,
            "name": experiment.name,
            "status": experiment.get_status_display(),
            "status_key": experiment.status,
            "started_at": experiment.started_at,
            "report_url": report_url(experiment.key),
        }
        for experiment in experiments
    ]


def _thresholds() -> tuple[float | None, float | None]:
    """The low-confidence and escalation thresholds of the enabled rules, to mark on charts."""
    thresholds = dict(
        AlertRule.objects.filter(
            enabled=True,
            metric__in=[AlertRule.Metric.AVG_CONFIDENCE, AlertRule.Metric.ESCALATION_RATE],
        )
        .order_by("metric", "-threshold")
        .values_list("metric", "threshold")
    )
    confidence = thresholds.get(AlertRule.Metric.AVG_CONFIDENCE)
    escalation = thresholds.get(AlertRule.Metric.ESCALATION_RATE)
    return (
        None if confidence is None else float(confidence),
        None if escalation is None else float(escalation),
    )


def dashboard_page(request, *, context: dict) -> TemplateResponse:
    """The routing dashboard: KPI cards, alerts, charts, breakdowns, experiment links."""
    window = request.GET.get("window") or DEFAULT_WINDOW
    experiment = request.GET.get("experiment") or None
    try:
        window_resolve(window)
    except MetricsInputError as err:
        messages.error(request, f"{err} Showing the last 7 days instead.")
        window = DEFAULT_WINDOW
    try:
        experiment = experiment_key_of(experiment)
    except MetricsInputError as err:
        messages.error(request, f"{err} Showing all traffic instead.")
        experiment = None
    data = router_dashboard.get_dashboard(window=window, experiment=experiment)
    experiments = _experiment_links()
    empty = data["overview"]["total_requests"] == 0
    charts = []
    if not empty:
        from dashboard.charts import build_charts

        low_confidence, escalation_pct = _thresholds()
        charts = [
            {
                "key": chart.key,
                "title": chart.title,
                "description": chart.description,
                "figure": json.loads(chart.figure.to_json()),
            }
            for chart in build_charts(
                data,
                low_confidence_threshold=low_confidence,
                escalation_alert_pct=escalation_pct,
            )
        ]
    context.update(
        {
            "title": "Routing dashboard",
            "data": data,
            "empty": empty,
            "has_any_calls": (not empty) or CallRollup.objects.exists(),
            "cards": _cards(data["overview"]),
            "alerts": [
                {**alert, "css": _LEVEL_CSS.get(alert["level"], "info")} for alert in data["alerts"]
            ],
            "charts": charts,
            "charts_data": [{"key": chart["key"], "figure": chart["figure"]} for chart in charts],
            "complexity_rows": _table(data["by_complexity"]),
            "arm_rows": _table(data["by_arm"]),
            "window_choices": [(key, label) for key, label, _ in WINDOW_CHOICES],
            "selected_window": data["window"]["key"],
            "window_text": _window_text(data["window"]),
            "selected_experiment": data["experiment"] or "",
            "experiments": experiments,
            "alert_rules_url": _admin_url("admin:experiments_alertrule_changelist"),
        }
    )
    return TemplateResponse(request, "dashboard/dashboard.html", context)


def _window_text(window: dict) -> str:
    if not window["since"]:
        return "All time"
    since = datetime.fromisoformat(window["since"])
    until = datetime.fromisoformat(window["until"])
    return f"{window['label']}: {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"


def _admin_url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def experiments_page(request, *, context: dict) -> TemplateResponse:
    """Every experiment with its status and a link to its report."""
    experiments = Experiment.objects.prefetch_related("arms").order_by("-created_at")
    context.update(
        {
            "title": "Experiment reports",
            "experiments": [
                {
                    "key": experiment.key,
                    "name": experiment.name,
                    "status": experiment.get_status_display(),
                    "status_key": experiment.status,
                    "traffic_percentage": experiment.traffic_percentage,
                    "arms": ", ".join(
                        f"{arm.key} ({arm.weight}%)" for arm in experiment.arms.all()
                    ),
                    "started_at": experiment.started_at,
                    "report_url": report_url(experiment.key),
                }
                for experiment in experiments
            ],
        }
    )
    return TemplateResponse(request, "dashboard/experiments.html", context)


def report_unavailable_page(request, *, context: dict, key: str) -> TemplateResponse:
    context.update({"title": f"Report of {key}", "key": key})
    return TemplateResponse(request, "dashboard/report_unavailable.html", context, status=503)
