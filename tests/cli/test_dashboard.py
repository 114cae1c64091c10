"""`manage.py routing dashboard`: overview, alerts, breakdowns and series in the terminal."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from routing_platform.cli.subcommands._tables import table
from tests.metrics_factories import ensure_default_alert_rules, make_calls, recent_hour

pytestmark = pytest.mark.django_db


def _dashboard(*args: str) -> str:
    out = StringIO()
    call_command("routing", "dashboard", *args, stdout=out)
    return out.getvalue()


def test_dashboard_prints_overview_alerts_breakdowns_and_series():
    """All sections print, with the low-confidence alert and its action."""
    ensure_default_alert_rules()
    make_calls([{"confidence": 0.5, "completed_at": recent_hour(hours)} for hours in range(25)])
    output = _dashboard("--window", "7d")
    assert "requests          25 (0 failed)" in output
    assert "cost savings      90.0%" in output
    assert "[warning] Average confidence is 0.500" in output
    assert "Action: Use better models" in output
    for title in (
        "By complexity",
        "By tier",
        "By model",
        "By provider",
        "By task type",
        "By experiment arm",
    ):
        assert title in output
    assert "Time series (per day" in output


def test_dashboard_json_is_get_dashboard():
    """--json prints router_dashboard.get_dashboard() with the guide's keys."""
    make_calls([{}])
    data = json.loads(_dashboard("--json"))
    assert data["overview"]["total_requests"] == 1
    assert {"alerts", "timeseries", "by_arm", "by_complexity"} <= set(data)


def test_dashboard_on_an_empty_database():
    """No calls: the overview of zeros, no alerts, and what to run."""
    output = _dashboard()
    assert "requests          0" in output
    assert "none" in output
    assert "No routed calls in this window" in output


def test_dashboard_refuses_negative_points():
    """--points -1 is a CommandError."""
    with pytest.raises(CommandError, match="--points"):
        _dashboard("--points", "-1")


def test_table_aligns_numbers_right_and_text_left():
    """Number columns (dashes allowed) align right with their header; text columns left."""
    text = table(("name", "n", "url"), [["a", "5", "-"], ["bbb", "$12.00", "http://x"]])
    lines = text.splitlines()
    assert lines[0] == "  name       n  url"
    assert lines[2] == "  a          5  -"
    assert lines[3] == "  bbb   $12.00  http://x"
