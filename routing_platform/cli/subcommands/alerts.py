"""`routing alerts`: the alerts that fire now, or the rules behind them."""

from __future__ import annotations

from django.core.management.base import CommandError

from experiments.models import AlertRule
from routing_platform.cli.subcommands._tables import (
    add_window_arguments,
    as_json,
    table,
    window_heading,
    window_read,
)
from routing_platform.cli.subcommands.dashboard import alert_lines
from routing_platform.routing.dashboard import router_dashboard

HELP = "Alerts that fire for a window (or --rules: the alert rules); --fail-on for cron/CI."

LEVELS = ("info", "warning", "critical")


def add_arguments(parser) -> None:
    add_window_arguments(parser)
    parser.add_argument(
        "--rules",
        action="store_true",
        help="List the alert rules (thresholds, levels, actions) instead of evaluating them.",
    )
    parser.add_argument(
        "--fail-on",
        choices=LEVELS,
        default=None,
        help="Exit with an error when an alert of this level or worse fires (for cron or CI).",
    )


def _rules(command, as_json_output: bool) -> None:
    rules = list(AlertRule.objects.order_by("metric", "key"))
    if as_json_output:
        command.stdout.write(
            as_json(
                [
                    {
                        "key": rule.key,
                        "name": rule.name,
                        "metric": rule.metric,
                        "threshold": None if rule.threshold is None else float(rule.threshold),
                        "level": rule.level,
                        "min_requests": rule.min_requests,
                        "enabled": rule.enabled,
                        "action": rule.action,
                    }
                    for rule in rules
                ]
            )
        )
        return
    if not rules:
        command.stdout.write("No alert rules. Add some in the admin (Experiments > Alert rules).")
        return
    command.stdout.write(
        table(
            ("rule", "metric", "threshold", "level", "min requests", "enabled"),
            [
                [
                    rule.key,
                    rule.metric,
                    "-" if rule.threshold is None else f"{rule.threshold.normalize():f}",
                    rule.level,
                    f"{rule.min_requests:,}",
                    "yes" if rule.enabled else "no",
                ]
                for rule in rules
            ],
        )
    )


def handle(command, **options) -> None:
    if options["rules"]:
        _rules(command, options["json"])
        return

    data = window_read(router_dashboard.get_dashboard, options)
    alerts = data["alerts"]
    if options["json"]:
        command.stdout.write(
            as_json({"window": data["window"], "experiment": data["experiment"], "alerts": alerts})
        )
    else:
        requests = f" ({data['overview']['total_requests']:,} requests)"
        window_heading(command, "Alerts", data, requests)
        for line in alert_lines(command, alerts):
            command.stdout.write(line)
    fail_on = options.get("fail_on")
    if fail_on:
        floor = LEVELS.index(fail_on)
        firing = [alert for alert in alerts if LEVELS.index(alert["level"]) >= floor]
        if firing:
            raise CommandError(
                f"{len(firing)} alert(s) at level {fail_on} or worse; see the actions above."
            )
