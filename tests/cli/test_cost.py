"""`manage.py routing cost`: the analytics summary as tables and JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.metrics_factories import make_calls, make_experiment

pytestmark = pytest.mark.django_db


def _cost(*args: str) -> str:
    out = StringIO()
    call_command("routing", "cost", *args, stdout=out)
    return out.getvalue()


def test_cost_prints_savings_and_breakdowns():
    """Totals, savings and tables by complexity, model, task type and arm."""
    experiment, control, smart = make_experiment()
    make_calls(
        [{"experiment": experiment, "arm": smart}] * 4
        + [
            {
                "complexity": "complex",
                "tier": "premium",
                "model": "claude-opus",
                "cost_usd": Decimal("0.0100"),
                "baseline_cost_usd": Decimal("0.0100"),
            }
        ]
    )
    output = _cost()
    assert "requests          5" in output
    assert "savings           $0.0360 (72.0%)" in output
    assert "By complexity" in output and "By model" in output and "By task type" in output
    assert "smart-vs-council/smart" in output
    simple = next(line for line in output.splitlines() if line.strip().startswith("simple"))
    assert "90.0%" in simple


def test_cost_by_option_selects_breakdowns():
    """--by tier --by provider prints only those tables."""
    make_calls([{}])
    output = _cost("--by", "tier", "--by", "provider")
    assert "By tier" in output and "By provider" in output
    assert "By complexity" not in output


def test_cost_json_is_the_summary():
    """--json prints analytics.get_summary() as JSON."""
    make_calls([{}] * 2)
    data = json.loads(_cost("--json", "--window", "24h"))
    assert data["total_requests"] == 2
    assert data["by_complexity"]["simple"]["requests"] == 2
    assert data["savings"]["percentage"] == pytest.approx(90.0)


def test_cost_on_an_empty_database_says_how_to_get_data():
    """No calls: a sentence saying what to run, not an empty table or a traceback."""
    assert "No routed calls in this window" in _cost()


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--window", "soon"), "Unknown time window"), (("--experiment", "nope"), "No experiment")],
)
def test_cost_bad_input_is_a_command_error(args, message):
    """A bad window or unknown experiment is a CommandError that says what is accepted."""
    with pytest.raises(CommandError, match=message):
        _cost(*args)
