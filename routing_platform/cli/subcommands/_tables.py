"""Plain-text tables and number formats for the `routing` subcommands that print reports
(status, cost, dashboard, alerts). Not a subcommand: the leading underscore hides it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder


def _numeric(cell: str) -> bool:
    return cell[:1] in set("0123456789$+") or (cell[:1] == "-" and cell[1:2].isdigit())


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, indent: str = "  ") -> str:
    """Columns padded to their widest cell. A column whose cells are all numbers (or "-")
    aligns right, header included; the first column and text columns align left."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    right = [
        index > 0
        and any(_numeric(row[index]) for row in cells)
        and all(_numeric(row[index]) or row[index] == "-" for row in cells)
        for index in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[index]) if right[index] else cell.ljust(widths[index])
            for index, cell in enumerate(row)
        ]
        return (indent + "  ".join(parts)).rstrip()

    rule = indent + "  ".join("-" * width for width in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def usd(value: float | None, places: int = 4) -> str:
    return "-" if value is None else f"${value:,.{places}f}"


def pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def as_json(data) -> str:
    return json.dumps(data, indent=2, cls=DjangoJSONEncoder)


def add_window_arguments(parser, *, default: str = "all") -> None:
    parser.add_argument(
        "--window",
        default=default,
        help=f"Time window: all, or a number with h, d or w, e.g. 24h, 7d, 2w (default: {default}).",
    )
    parser.add_argument(
        "--experiment",
        default=None,
        metavar="KEY",
        help="Only the calls of this experiment (its key); default: all traffic.",
    )
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def call_facade(function, **kwargs):
    """Run a dashboard/analytics call, turning bad input into a CommandError."""
    try:
        return function(**kwargs)
    except ValueError as err:
        raise CommandError(str(err)) from None


def window_read(function, options: dict) -> dict:
    """The dashboard/analytics report of the ``--window`` and ``--experiment`` arguments
    (`add_window_arguments`); bad input is a CommandError."""
    return call_facade(function, window=options["window"], experiment=options["experiment"])


def window_heading(command, title: str, data: dict, detail: str = "") -> None:
    """The heading of a window report: ``title: window, experiment (or all traffic)``."""
    scope = data["experiment"] or "all traffic"
    command.stdout.write(
        command.style.MIGRATE_HEADING(f"{title}: {data['window']['label']}, {scope}{detail}")
    )


def window_report(command, function, title: str, options: dict) -> dict | None:
    """`window_read`, then with ``--json`` the report printed as JSON (and None: nothing
    more to print), else its heading printed and the report returned for the tables."""
    data = window_read(function, options)
    if options["json"]:
        command.stdout.write(as_json(data))
        return None
    window_heading(command, title, data)
    return data


BREAKDOWN_HEADERS = (
    "requests",
    "share",
    "cost",
    "baseline",
    "savings",
    "per request",
    "confidence",
    "escalated",
    "errors",
)


def breakdown_rows(breakdown: dict[str, dict]) -> list[list[str]]:
    return [
        [
            name,
            f"{entry['requests']:,}",
            pct(entry["share"]),
            usd(entry["cost_usd"]),
            usd(entry["baseline_cost_usd"]),
            f"{entry['cost_savings_percentage']:.1f}%",
            usd(entry["cost_per_request_usd"], 5),
            f"{entry['avg_confidence']:.3f}",
            pct(entry["escalation_rate"]),
            pct(entry["error_rate"]),
        ]
        for name, entry in breakdown.items()
    ]


def breakdown_table(title: str, column: str, breakdown: dict[str, dict]) -> str:
    if not breakdown:
        return f"{title}\n  (no calls)"
    return f"{title}\n" + table((column, *BREAKDOWN_HEADERS), breakdown_rows(breakdown))
