"""The dashboard pages, rendered inside the admin (``dashboard.admin`` wires the URLs).

Thin: read the filter from the query string, ask ``router_dashboard`` for the data, hand
it to the pure chart module, render a template that extends ``admin/base_site.html``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from dashboard.charts import build_charts
from dashboard.report_presentation import primary_lift
from dashboard.selectors import cost_by_model_series
from experiments.formatting import ms, pct, usd, when
from experiments.metrics import WINDOW_CHOICES, MetricsInputError, TimeWindow, window_resolve
from experiments.models import AlertRule, AlertSilence, CallRollup, Experiment
from experiments.reports import experiment_report
from experiments.savings import control_arm_labels, routed_savings
from experiments.services.alert_silences import (
    SNOOZE_HOURS,
    alert_silence_record,
    alert_silences_active,
)
from routing_platform.routing.dashboard import experiment_key_of, router_dashboard

#: The window the page opens with: the last week, what a morning look needs.
DEFAULT_WINDOW = "7d"
#: The longest custom range (the rollups keep more, the page stays fast).
CUSTOM_RANGE_MAX_DAYS = 400
_LEVEL_CSS = {"critical": "critical", "warning": "warning", "info": "info"}


def _cards(overview: dict, headline: dict) -> list[dict]:
    """The headline figures as label/value/hint triples; savings over the routed traffic
    (``headline``: every call except those of control arms, like the arm rows)."""
    return [
        {
            "label": "Requests",
            "value": f"{overview['total_requests']:,}",
            "hint": f"{overview['failed_requests']:,} failed",
        },
        {
            "label": "Cost savings",
            "value": headline["percentage"],
            "hint": f"{headline['saved']} saved on routed traffic (control arms left out)",
            "key": "savings",
        },
        {
            "label": "Total cost",
            "value": usd(overview["total_cost_usd"]),
            "hint": f"baseline {usd(overview['baseline_cost_usd'])}",
        },
        {
            "label": "Cost per request",
            "value": usd(overview["cost_per_request_usd"]),
            "hint": "actual, all served calls",
        },
        {
            "label": "Avg confidence",
            "value": f"{overview['avg_confidence']:.2f}",
            "hint": "0-1, of the answering model",
            "key": "confidence",
        },
        {
            "label": "Escalation rate",
            "value": pct(overview["escalation_rate"]),
            "hint": "to a stronger tier",
        },
        {"label": "Error rate", "value": pct(overview["error_rate"]), "hint": "failed calls"},
        {
            "label": "Latency p50 / p95",
            "value": f"{ms(overview['latency_p50_ms'])} / {ms(overview['latency_p95_ms'])}",
            "hint": "estimated from histograms",
        },
    ]


def headline_savings(by_arm: dict[str, dict], control_labels: set[str]) -> dict:
    """The savings card's figures (``experiments.savings``: control arms left out)."""
    savings = routed_savings(by_arm, control_labels)
    return {
        "percentage": pct(savings.fraction),
        "saved": usd(savings.saved_usd),
        "fraction": savings.fraction,
    }


def _table(breakdown: dict[str, dict]) -> list[dict]:
    return [
        {
            "name": name,
            "requests": f"{entry['requests']:,}",
            "share": pct(entry["share"]),
            "cost": usd(entry["cost_usd"]),
            "baseline": usd(entry["baseline_cost_usd"]),
            "savings": f"{entry['cost_savings_percentage']:.1f}%",
            "per_request": usd(entry["cost_per_request_usd"]),
            "confidence": f"{entry['avg_confidence']:.2f}",
            "escalation": pct(entry["escalation_rate"]),
            "errors": pct(entry["error_rate"]),
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
            "started": when(experiment.started_at),
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


@dataclass(frozen=True)
class Filter:
    """What the dashboard shows: a named window or a custom day range, and the traffic."""

    window: str | TimeWindow
    experiment: str | None
    start_day: str = ""
    end_day: str = ""


def _custom_window(start_text: str, end_text: str) -> TimeWindow:
    """Whole UTC days from ``start_text`` to ``end_text`` (YYYY-MM-DD, both included)."""
    try:
        start_day = date.fromisoformat(start_text)
        end_day = date.fromisoformat(end_text) if end_text else timezone.now().date()
    except ValueError as err:
        raise MetricsInputError(
            f"A custom range takes dates as YYYY-MM-DD, not {start_text!r} / {end_text!r}."
        ) from err
    if end_day < start_day:
        raise MetricsInputError(f"The range ends ({end_day}) before it starts ({start_day}).")
    if (end_day - start_day).days > CUSTOM_RANGE_MAX_DAYS:
        raise MetricsInputError(f"A custom range is at most {CUSTOM_RANGE_MAX_DAYS} days long.")
    since = datetime.combine(start_day, time.min, tzinfo=UTC)
    until = datetime.combine(end_day, time.min, tzinfo=UTC) + timedelta(days=1)
    return TimeWindow(
        key="custom",
        label=f"{start_day:%b %d, %Y} to {end_day:%b %d, %Y}",
        since=since,
        until=until,
    )


def dashboard_filter(request) -> Filter:
    """The filter of the query string; a bad value falls back with a message, never a 500."""
    experiment = request.GET.get("experiment") or None
    start_text, end_text = request.GET.get("start", "").strip(), request.GET.get("end", "").strip()
    window: str | TimeWindow = request.GET.get("window") or DEFAULT_WINDOW
    try:
        if start_text:
            window = _custom_window(start_text, end_text)
        else:
            window_resolve(window)
    except MetricsInputError as err:
        messages.error(request, f"{err} Showing the last 7 days instead.")
        window, start_text, end_text = DEFAULT_WINDOW, "", ""
    try:
        experiment = experiment_key_of(experiment)
    except MetricsInputError as err:
        messages.error(request, f"{err} Showing all traffic instead.")
        experiment = None
    return Filter(window=window, experiment=experiment, start_day=start_text, end_day=end_text)


def alert_rows(alerts: list[dict]) -> list[dict]:
    """The alerts with their CSS class, advice that fits the current settings, and the
    silence (acknowledgement or snooze) in force, if any."""
    silences = alert_silences_active()
    rows = []
    for alert in alerts:
        silence = silences.get((alert["rule"], alert.get("experiment") or ""))
        rows.append(
            {
                **alert,
                "css": _LEVEL_CSS.get(alert["level"], "info"),
                "action": alert_advice(alert),
                "experiment": alert.get("experiment") or "",
                "silence": silence,
                "silence_text": _silence_text(silence),
            }
        )
    return rows


def _silence_text(silence: AlertSilence | None) -> str:
    if silence is None:
        return ""
    who = silence.username or "system"
    return f"{silence.get_kind_display()} by {who} until {silence.until:%b %d %H:%M} UTC"


def alert_silence_view(request) -> HttpResponseRedirect:
    """POST: acknowledge or snooze one alert, then back to the dashboard (audited: the
    silence row records who, when and until when)."""
    back = request.POST.get("next") or reverse("admin:dashboard_dashboard_changelist")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("admin:dashboard_dashboard_changelist")
    if request.method != "POST":
        return HttpResponseRedirect(back)
    if not request.user.has_perm("experiments.add_alertsilence"):
        raise PermissionDenied("Silencing alerts needs the add_alertsilence permission.")
    try:
        hours = int(request.POST.get("hours") or 0) or None
        silence = alert_silence_record(
            rule_key=request.POST.get("rule", ""),
            experiment_key=request.POST.get("experiment", ""),
            kind=request.POST.get("kind", ""),
            hours=hours,
            user=request.user,
        )
    except (ValueError, ValidationError) as err:
        text = " ".join(err.messages) if isinstance(err, ValidationError) else str(err)
        messages.error(request, f"The alert was not silenced: {text}")
    else:
        messages.success(request, f"Alert {silence.rule_key}: {_silence_text(silence).lower()}.")
    return HttpResponseRedirect(back)


def alert_advice(alert: dict) -> str:
    """The rule's action, unless it advises what the settings already do."""
    action = alert["action"]
    if alert["metric"] == "cost_per_request_usd" and settings.ROUTER_COST_OPTIMIZATION:
        return (
            "Cost optimization is already on (ROUTER_COST_OPTIMIZATION=true). Check the "
            "complexity classification (simple requests should run on mini models), the "
            "escalation rate (each escalation pays twice; ROUTER_ESCALATION_THRESHOLD is "
            f"{settings.ROUTER_ESCALATION_THRESHOLD:g}) and which arms run premium strategies."
        )
    return action


def _chart_dicts(built) -> list[dict]:
    return [
        {
            "key": chart.key,
            "title": chart.title,
            "description": chart.description,
            "figure": json.loads(chart.figure.to_json()),
        }
        for chart in built
    ]


def dashboard_page(request, *, context: dict) -> TemplateResponse:
    """The routing dashboard: KPI cards, alerts, charts, breakdowns, experiment links."""
    chosen = dashboard_filter(request)
    data = router_dashboard.get_dashboard(window=chosen.window, experiment=chosen.experiment)
    experiments = _experiment_links()
    empty = data["overview"]["total_requests"] == 0
    charts = []
    if not empty:
        low_confidence, escalation_pct = _thresholds()
        window = data["window"]
        per_model = cost_by_model_series(
            since=datetime.fromisoformat(window["since"]) if window["since"] else None,
            until=datetime.fromisoformat(window["until"]),
            granularity=data["timeseries_granularity"],
            experiment_key=data["experiment"],
        )
        charts = _chart_dicts(
            build_charts(
                data,
                low_confidence_threshold=low_confidence,
                escalation_alert_pct=escalation_pct,
                cost_by_model=per_model,
            )
        )
    context.update(
        {
            "title": "Routing dashboard",
            "data": data,
            "empty": empty,
            "has_any_calls": (not empty) or CallRollup.objects.exists(),
            "cards": _cards(
                data["overview"], headline_savings(data["by_arm"], control_arm_labels())
            ),
            "alerts": alert_rows(data["alerts"]),
            "can_silence": request.user.has_perm("experiments.add_alertsilence"),
            "snooze_hours": SNOOZE_HOURS,
            "charts": charts,
            "charts_data": [{"key": chart["key"], "figure": chart["figure"]} for chart in charts],
            "complexity_rows": _table(data["by_complexity"]),
            "arm_rows": _table(data["by_arm"]),
            "window_choices": [(key, label) for key, label, _ in WINDOW_CHOICES],
            "selected_window": data["window"]["key"],
            "window_text": _window_text(data["window"]),
            "start_day": chosen.start_day,
            "end_day": chosen.end_day,
            "selected_experiment": data["experiment"] or "",
            "experiments": experiments,
            "alert_rules_url": _admin_url("admin:experiments_alertrule_changelist"),
            "generated_text": when(datetime.fromisoformat(data["generated_at"])),
        }
    )
    return TemplateResponse(request, "dashboard/dashboard.html", context)


def _window_text(window: dict) -> str:
    if not window["since"]:
        return "All time"
    since = datetime.fromisoformat(window["since"])
    until = datetime.fromisoformat(window["until"])
    return f"{window['label']}: {since:%b %d %H:%M} to {until:%b %d %H:%M} UTC"


def _admin_url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _report_summary(experiment: Experiment) -> dict:
    """The decision and the primary lift of one experiment's report, for the list."""
    if experiment.status == Experiment.Status.DRAFT:
        return {"decision": "", "decision_css": "", "lift": "-"}
    report = experiment_report(experiment=experiment)
    decision = report["decision"]
    lift = primary_lift(report)
    lift_text = "-"
    if lift is not None:
        lift_text = f"{pct(lift['lift'], 1, signed=True)} cost ({lift['arm']})"
        if lift["low"] is not None:
            lift_text += (
                f" [{pct(lift['low'], 1, signed=True)}, {pct(lift['high'], 1, signed=True)}]"
            )
    return {
        "decision": decision["status"] + (f": {decision['arm']}" if decision.get("arm") else ""),
        "decision_css": decision["status"].replace(" ", "-"),
        "lift": lift_text,
    }


def experiments_page(request, *, context: dict) -> TemplateResponse:
    """Every experiment with its status, decision, primary lift and a link to its report."""
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
                    "started": when(experiment.started_at),
                    "report_url": report_url(experiment.key),
                    **_report_summary(experiment),
                }
                for experiment in experiments
            ],
        }
    )
    return TemplateResponse(request, "dashboard/experiments.html", context)
