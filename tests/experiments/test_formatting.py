"""Number formatting of the admin pages (experiments.formatting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from experiments import formatting


def test_money_has_dollars_and_the_digits_its_size_needs():
    assert formatting.usd(Decimal("0.0021857500")) == "$0.00219"
    assert formatting.usd(1234.5) == "$1,234.50"
    assert formatting.usd(0.01) == "$0.01"
    assert formatting.usd(0) == "$0.00"
    assert formatting.usd(None) == "-"


def test_thresholds_carry_their_unit():
    assert (
        formatting.threshold("cost_per_request_usd", Decimal("0.0100000000")) == "$0.01 per request"
    )
    assert formatting.threshold("escalation_rate", Decimal("30.0000000000")) == "30%"
    assert formatting.threshold("avg_confidence", Decimal("0.6000000000")) == "0.6"
    assert formatting.threshold("error_rate_rise", Decimal("1")) == "1 pts"
    assert formatting.threshold("guardrail", None) == "set per experiment"


def test_timestamps_read_as_minute_and_age():
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert formatting.when(now - timedelta(hours=3), now=now) == "2026-12-03 09:00 UTC (3 h ago)"
    assert formatting.when(None) == "-"
