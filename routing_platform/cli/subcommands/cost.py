"""`routing cost`: cost analysis (the guide's `analytics.get_summary()` as tables)."""

from __future__ import annotations

from routing_platform.cli.subcommands._tables import (
    add_window_arguments,
    breakdown_table,
    pct,
    usd,
    window_report,
)
from routing_platform.routing.analytics import analytics

HELP = "Cost analysis: spend, baseline and savings, by complexity, tier, model, task type and arm."

#: --by choice -> (summary key, title, column).
BREAKDOWNS = {
    "complexity": ("by_complexity", "By complexity", "complexity"),
    "tier": ("by_tier", "By tier", "tier"),
    "model": ("by_model", "By model", "model"),
    "provider": ("by_provider", "By provider", "provider"),
    "task_type": ("by_task_type", "By task type", "task type"),
    "arm": ("by_arm", "By experiment arm", "arm"),
}
DEFAULT_BREAKDOWNS = ("complexity", "model", "task_type", "arm")


def add_arguments(parser) -> None:
    add_window_arguments(parser)
    parser.add_argument(
        "--by",
        action="append",
        choices=sorted(BREAKDOWNS),
        help="Breakdown(s) to print (repeatable; default: complexity, model, task_type, arm).",
    )


def handle(command, **options) -> None:
    summary = window_report(command, analytics.get_summary, "Cost analysis", options)
    if summary is None:
        return
    out = command.stdout
    if not summary["total_requests"]:
        out.write(
            "  No routed calls in this window. Record some first, e.g. "
            "`python manage.py routing simulate --experiment KEY --requests 300`."
        )
        return
    savings = summary["savings"]
    out.write(f"  requests          {summary['total_requests']:,}")
    out.write(f"  actual cost       {usd(summary['total_cost_usd'])}")
    out.write(f"  baseline cost     {usd(summary['baseline_cost_usd'])}  (original council)")
    style = command.style.SUCCESS if savings["percentage"] >= 70 else command.style.WARNING
    out.write(
        "  savings           " + style(f"{usd(savings['usd'])} ({savings['percentage']:.1f}%)")
    )
    out.write(f"  cost per request  {usd(summary['cost_per_request_usd'], 5)}")
    out.write(f"  avg confidence    {summary['avg_confidence']:.3f}")
    out.write(f"  escalation rate   {pct(summary['escalation_rate'])}")
    for name in options.get("by") or DEFAULT_BREAKDOWNS:
        key, title, column = BREAKDOWNS[name]
        out.write("")
        out.write(breakdown_table(title, column, summary[key]))
