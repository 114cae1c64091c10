"""`manage.py routing alerts`: firing alerts, the rules, and --fail-on for cron."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.metrics_factories import ensure_default_alert_rules, make_calls

pytestmark = pytest.mark.django_db


def _alerts(*args: str) -> str:
    out = StringIO()
    call_command("routing", "alerts", *args, stdout=out)
    return out.getvalue()


def test_alerts_print_level_message_and_action():
    """A firing rule prints as [level] message, then its action."""
    ensure_default_alert_rules()
    make_calls([{"confidence": 0.3, "escalated": True}] * 30)
    output = _alerts()
    assert "[warning] Average confidence is 0.300" in output
    assert "[warning] Escalation rate is 100.0%" in output
    assert output.count("Action:") == 2


def test_alerts_json():
    """--json lists the alerts as objects with level, message and action."""
    ensure_default_alert_rules()
    make_calls([{"confidence": 0.3}] * 30)
    data = json.loads(_alerts("--json"))
    assert [alert["rule"] for alert in data["alerts"]] == ["low-confidence"]
    assert data["alerts"][0]["level"] == "warning"


def test_fail_on_exits_with_an_error_only_at_or_above_the_level():
    """--fail-on warning fails on a warning; --fail-on critical does not."""
    ensure_default_alert_rules()
    make_calls([{"confidence": 0.3}] * 30)
    _alerts("--fail-on", "critical")
    with pytest.raises(CommandError, match="1 alert"):
        _alerts("--fail-on", "warning")


def test_rules_lists_thresholds():
    """--rules prints each rule's metric, threshold and level."""
    ensure_default_alert_rules()
    output = _alerts("--rules")
    line = next(line for line in output.splitlines() if "low-confidence" in line)
    assert "avg_confidence" in line and "0.6" in line and "warning" in line
    rules = json.loads(_alerts("--rules", "--json"))
    assert {rule["key"] for rule in rules} >= {"low-confidence", "high-escalation", "high-cost"}


def test_no_alerts_on_a_quiet_system():
    """Healthy calls: 'none'."""
    ensure_default_alert_rules()
    make_calls([{}] * 30)
    assert "none" in _alerts()
