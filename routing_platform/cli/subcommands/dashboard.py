"""`routing dashboard`: the full dashboard in the terminal (`router_dashboard.get_dashboard()`)."""

from __future__ import annotations

from django.core.management.base import CommandError

from experiments.savings import control_arm_labels, routed_savings
from routing_platform.cli.subcommands._tables import (
    add_window_arguments,
    breakdown_table,
    ms,
    pct,
    table,
    usd,
    window_report,
)
from routing_platform.routing.dashboard import router_dashboard

HELP = "The full dashboard: overview, alerts, breakdowns and the time series."

BREAKDOWNS = (
    ("by_complexity", "By complexity", "complexity"),
    ("by_tier", "By tier", "tier"),
    ("by_model", "By model", "model"),
    ("by_provider", "By provider", "provider"),
    ("by_task_type", "By task type", "task type"),
    ("by_arm", "By experiment arm", "arm"),
)


def add_arguments(parser) -> None:
    add_window_arguments(parser)
    parser.add_argument(
        "--points",
        type=int,
        default=14,
        help="How many of the latest time-series points to print (default: 14; 0: none).",
    )


def overview_lines(overview: dict) -> list[str]:
    return [
        f"  requests          {overview['total_requests']:,} ({overview['failed_requests']:,} failed)",
        f"  total cost        {usd(overview['total_cost_usd'])}",
        f"  baseline cost     {usd(overview['baseline_cost_usd'])}",
        f"  cost savings      {overview['cost_savings_percentage']:.1f}%",
        f"  cost per request  {usd(overview['cost_per_request_usd'], 5)}",
        f"  avg confidence    {overview['avg_confidence']:.3f}",
        f"  escalation rate   {pct(overview['escalation_rate'])}",
        f"  error rate        {pct(overview['error_rate'])}",
        f"  latency p50 / p95 {ms(overview['latency_p50_ms'])} / {ms(overview['latency_p95_ms'])}",
    ]


def alert_lines(command, alerts: list[dict]) -> list[str]:
    if not alerts:
        return ["  none"]
    styles = {"critical": command.style.ERROR, "warning": command.style.WARNING}
    lines = []
    for alert in alerts:
        style = styles.get(alert["level"], command.style.NOTICE)
        lines.append("  " + style(f"[{alert['level']}]") + f" {alert['message']}")
        lines.append(f"      Action: {alert['action']}")
    return lines


def handle(command, **options) -> None:
    if options["points"] < 0:
        raise CommandError("--points must be 0 or more.")
    data = window_report(command, router_dashboard.get_dashboard, "Routing dashboard", options)
    if data is None:
        return
    out = command.stdout
    for line in overview_lines(data["overview"]):
        out.write(line)
    routed = routed_savings(data["by_arm"], control_arm_labels())
    out.write(f"  routed savings    {pct(routed.fraction)} of the baseline, control arms left out")
    out.write("")
    out.write(command.style.MIGRATE_HEADING("Alerts"))
    for line in alert_lines(command, data["alerts"]):
        out.write(line)
    if not data["overview"]["total_requests"]:
        out.write("")
        out.write(
            "  No routed calls in this window. Record some first, e.g. "
            "`python manage.py routing simulate --experiment KEY --requests 300`."
        )
        return
    for key, title, column in BREAKDOWNS:
        out.write("")
        out.write(breakdown_table(title, column, data[key]))
    points = data["timeseries"][-options["points"] :] if options["points"] else []
    if points:
        out.write("")
        out.write(f"Time series (per {data['timeseries_granularity']}, latest {len(points)})")
        out.write(
            table(
                (
                    "start (UTC)",
                    "requests",
                    "cost",
                    "baseline",
                    "savings",
                    "confidence",
                    "escalated",
                    "errors",
                    "p50",
                    "p95",
                ),
                [
                    [
                        point["bucket_start"][:16].replace("T", " "),
                        f"{point['requests']:,}",
                        usd(point["cost_usd"]),
                        usd(point["baseline_cost_usd"]),
                        f"{point['cost_savings_percentage']:.1f}%",
                        f"{point['avg_confidence']:.3f}",
                        pct(point["escalation_rate"]),
                        pct(point["error_rate"]),
                        ms(point["latency_p50_ms"]),
                        ms(point["latency_p95_ms"]),
                    ]
                    for point in points
                ],
            )
        )
