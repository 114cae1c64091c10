"""How the admin pages write numbers: money, percentages, durations, timestamps (pure).

One place, so the dashboard, the report and the admin lists agree: money as ``$`` with
the digits its size needs, rates as percentages, thresholds with their unit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

DASH = "-"


def usd(value: float | Decimal | None) -> str:
    """``$1,234.56``, ``$0.0219``, ``$0.000412``: two decimals from a dollar up, else
    three significant digits (a cost per request is a fraction of a cent)."""
    if value is None:
        return DASH
    amount = float(value)
    if amount == 0:
        return "$0.00"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    digits = f"{abs(amount):.3g}"
    places = max(2, len(digits.split(".")[1]) if "." in digits else 2)
    if "e" in digits:
        places = 8
    return f"{'-' if amount < 0 else ''}${abs(amount):.{places}f}"


def pct(fraction: float | None, places: int = 1, *, signed: bool = False) -> str:
    """A fraction (0.123) as a percentage ("12.3%", "+12.3%" when ``signed``)."""
    if fraction is None:
        return DASH
    return f"{fraction * 100:+.{places}f}%" if signed else f"{fraction * 100:.{places}f}%"


def ms(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f} ms"


def number(value: float | None, places: int = 3) -> str:
    return DASH if value is None else f"{value:,.{places}f}"


def p_value(value: float | None) -> str:
    if value is None:
        return DASH
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def threshold(metric: str, value: float | Decimal | None) -> str:
    """An alert rule's threshold with its unit (the rule's metric decides which)."""
    if value is None:
        return "set per experiment"
    amount = float(value)
    if metric == "cost_per_request_usd":
        return f"{usd(amount)} per request"
    if metric == "escalation_rate":
        return f"{amount:g}%"
    if metric == "error_rate_rise":
        return f"{amount:g} pts"
    if metric == "srm":
        return f"p < {amount:g}"
    return f"{amount:g}"


def when(moment: datetime | None, *, now: datetime | None = None) -> str:
    """``2026-12-03 08:15 UTC (3 h ago)``: the exact minute and how long ago."""
    if moment is None:
        return DASH
    moment = moment.astimezone(UTC)
    age = ((now or datetime.now(UTC)) - moment).total_seconds()
    return f"{moment:%Y-%m-%d %H:%M} UTC ({ago(age)})"


def ago(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86_400:.0f} days ago"
