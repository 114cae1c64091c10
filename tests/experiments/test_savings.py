"""Headline savings over routed traffic (experiments.savings)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from experiments.savings import control_arm_labels, routed_savings
from tests.metrics_factories import make_calls, make_experiment


def test_routed_savings_leave_control_rows_out():
    by_arm = {
        "exp/control": {"cost_usd": 1.0, "baseline_cost_usd": 1.0},
        "exp/smart": {"cost_usd": 0.1, "baseline_cost_usd": 1.0},
        "none": {"cost_usd": 0.3, "baseline_cost_usd": 1.0},
    }
    savings = routed_savings(by_arm, {"exp/control"})
    assert savings.fraction == pytest.approx(0.8)
    assert savings.saved_usd == pytest.approx(1.6)
    assert routed_savings({}, set()).fraction is None


@pytest.mark.django_db
def test_the_cli_dashboard_prints_the_routed_savings_like_the_admin_card():
    """Smart arm 90% cheaper, control at baseline: routed savings 90.0%, blended 45.0%."""
    experiment, control, smart = make_experiment()
    make_calls(
        [{"experiment": experiment, "arm": smart}] * 10
        + [{"experiment": experiment, "arm": control, "cost_usd": "0.0100"}] * 10
    )
    assert control_arm_labels() == {f"{experiment.key}/{control.key}"}
    out = StringIO()
    call_command("routing", "dashboard", stdout=out)
    assert "routed savings    90.0% of the baseline, control arms left out" in out.getvalue()
