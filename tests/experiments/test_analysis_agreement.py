"""The report and the alerts read one analysis layer: on the same calls they agree."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import reports
from experiments.alerts import alerts_for
from experiments.metrics import dashboard_metrics
from experiments.models import AlertRule
from tests.metrics_factories import (
    ensure_default_alert_rules,
    make_calls,
    make_experiment,
    recent_hour,
)
from tests.quality_factories import add_signals

pytestmark = pytest.mark.django_db


def test_guardrail_alert_and_report_guardrail_agree_on_the_same_calls():
    """A request-level experiment whose smart arm inflates its scores (final_score 90 vs
    80) while its answers agree with the control's only ~0.7 of the time: the report's
    quality guardrail (the agreement signal) fails, and the guardrail alert fires on the
    same signal sums with the same harm, while no alert judges quality by final_score;
    escalation rates (escalated / all finished calls) are the same in the report and the
    dashboard."""
    ensure_default_alert_rules()
    AlertRule.objects.exclude(metric=AlertRule.Metric.GUARDRAIL).update(enabled=False)
    experiment, control, smart = make_experiment(unit_type="request", minimum_sample_per_arm=50)
    experiment.phases.update(started_at=recent_hour(2))
    rng = np.random.default_rng(1)
    specs = []
    for arm, quality in ((control, 80.0), (smart, 90.0)):
        for index in range(300):
            failed = index % 25 == 0
            specs.append(
                {
                    "experiment": experiment,
                    "arm": arm,
                    "phase": experiment.phases.get(),
                    "strategy": arm.strategy,
                    "status": "error" if failed else "success",
                    "escalated": index % 5 == 0,
                    "final_score": None if failed else float(rng.normal(quality, 5.0)),
                    "completed_at": recent_hour(1),
                }
            )
    make_calls(specs)
    add_signals(
        experiment, "smart", source="agreement", values=np.clip(rng.normal(0.7, 0.1, 200), 0, 1)
    )
    report = reports.experiment_report(experiment=experiment)
    assert report["analysis_unit"] == "call"
    score = next(t for t in report["tests"] if t["id"] == "quality:smart")
    assert score["absolute"]["difference"] > 0  # the score level rose
    quality = next(
        g for g in report["guardrails"] if g["guardrail"] == "quality" and g["arm"] == "smart"
    )
    assert quality["source"] == "agreement" and quality["status"] == "fail", quality
    assert quality["inputs"]["treatment"]["n"] == 100
    assert report["decision"]["status"] == reports.GUARDRAIL_FAILED
    alerts = [
        alert
        for alert in alerts_for(metrics=dashboard_metrics(window="7d"))
        if "quality" in alert.message
    ]
    assert len(alerts) == 1
    assert "quality (agreement)" in alerts[0].message and "final_score" not in alerts[0].message
    assert alerts[0].value == pytest.approx(quality["result"]["harm"] * 100, rel=1e-9)
    by_arm = dashboard_metrics(window="7d").by_arm
    for arm in report["arms"]:
        dashboard_rate = by_arm[f"{experiment.key}/{arm['key']}"]["escalation_rate"]
        assert arm["summary"]["escalation_rate"] == pytest.approx(dashboard_rate, rel=1e-12)
