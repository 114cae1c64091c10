"""The report and the alerts read one analysis layer: on the same calls they agree."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import reports
from experiments.alerts import alerts_for
from experiments.analysis.guardrails import call_error_test
from experiments.metrics import dashboard_metrics
from experiments.models import AlertRule, Assignment, Phase
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


def _clustered_error_calls(
    experiment, control, smart, *, seed: int, bad_every: int = 20, bad_rate: float = 0.4
) -> list[dict]:
    """Users with 1 + Poisson(4) calls each; the control errs 1% of the time; one smart
    user in ``bad_every / 2`` errs on ``bad_rate`` of its calls (errors cluster in
    units), the rest 1%."""
    rng = np.random.default_rng(seed)
    phase = experiment.phases.get()
    specs = []
    for index in range(400):
        arm = smart if index % 2 else control
        bad = arm is smart and index % bad_every == 1
        for _ in range(1 + int(rng.poisson(4))):
            failed = rng.random() < (bad_rate if bad else 0.01)
            specs.append(
                {
                    "experiment": experiment,
                    "arm": arm,
                    "phase": phase,
                    "unit_id": f"user-{index}",
                    "strategy": arm.strategy,
                    "status": "error" if failed else "success",
                    "escalated": rng.random() < 0.2,
                    "confidence": None if failed else 0.8,
                    "latency_ms": None if failed else 500.0,
                    "completed_at": recent_hour(1),
                }
            )
    return specs


def test_unit_level_guardrail_alert_and_report_agree_on_clustered_units():
    """A user-level experiment with several calls per user and errors clustered in a few
    smart users: the report tests the error-rate guardrail per unit (delta method over
    the UnitRollup sums), and the guardrail alert tests the same sums the same way, so
    the verdict, the harm and the p-value are the report's, not the call-level test's.
    The dashboard's per-arm escalation and error rates are the report's arm summaries."""
    ensure_default_alert_rules()
    AlertRule.objects.exclude(metric=AlertRule.Metric.GUARDRAIL).update(enabled=False)
    experiment, control, smart = make_experiment(
        minimum_sample_per_arm=50, sequential_testing=False
    )
    experiment.phases.update(started_at=recent_hour(2))
    make_calls(_clustered_error_calls(experiment, control, smart, seed=5))
    report = reports.experiment_report(experiment=experiment)
    assert report["analysis_unit"] == "unit"
    guardrail = next(
        g for g in report["guardrails"] if g["guardrail"] == "error_rate" and g["arm"] == "smart"
    )
    assert guardrail["status"] == "fail", guardrail
    assert guardrail["inputs"]["treatment"]["n"] == 200  # units, not calls
    result = guardrail["result"]
    [alert] = [
        a for a in alerts_for(metrics=dashboard_metrics(window="7d")) if "error" in a.message
    ]
    assert alert.value == pytest.approx(result["harm"] * 100, rel=1e-12)
    assert f"p = {result['p_value']:.2g}" in alert.message
    assert "from 200 vs 200 units" in alert.message
    # The call-level test on the same calls gives another p-value: the alert is not it.
    arms = {arm["key"]: arm for arm in report["arms"]}
    per_call = call_error_test(
        arms["council"]["sufficient_statistics"]["error_rate"],
        arms["smart"]["sufficient_statistics"]["error_rate"],
        margin=result["margin"],
        alpha=result["alpha"],
    )
    assert f"{per_call.p_value:.2g}" != f"{result['p_value']:.2g}"
    assert per_call.standard_error < result["standard_error"]  # clustering widens it
    by_arm = dashboard_metrics(window="all").by_arm
    for arm in report["arms"]:
        figures = by_arm[f"{experiment.key}/{arm['key']}"]
        assert figures["escalation_rate"] == arm["summary"]["escalation_rate"]
        assert figures["error_rate"] == arm["summary"]["error_rate"]
        assert figures["requests"] == arm["summary"]["calls"]


def test_clustered_errors_the_call_level_test_would_fail_raise_no_alert():
    """Errors concentrated in five smart users: counted per call the rise looks ruled
    beyond the margin, but per user (the report's test) it is inconclusive, so the
    report does not fail the guardrail and no guardrail alert fires."""
    ensure_default_alert_rules()
    AlertRule.objects.exclude(metric=AlertRule.Metric.GUARDRAIL).update(enabled=False)
    experiment, control, smart = make_experiment(
        minimum_sample_per_arm=50, sequential_testing=False
    )
    experiment.phases.update(started_at=recent_hour(2))
    specs = _clustered_error_calls(experiment, control, smart, seed=5, bad_every=80, bad_rate=1.0)
    make_calls(specs)
    report = reports.experiment_report(experiment=experiment)
    guardrail = next(
        g for g in report["guardrails"] if g["guardrail"] == "error_rate" and g["arm"] == "smart"
    )
    assert guardrail["status"] == "inconclusive", guardrail
    arms = {arm["key"]: arm for arm in report["arms"]}
    per_call = call_error_test(
        arms["council"]["sufficient_statistics"]["error_rate"],
        arms["smart"]["sufficient_statistics"]["error_rate"],
        margin=guardrail["margin"],
        alpha=guardrail["result"]["alpha"],
    )
    assert per_call.status == "fail"
    assert alerts_for(metrics=dashboard_metrics(window="7d")) == []


def test_srm_alert_and_report_count_the_units_of_the_current_phase_alike():
    """Phase 1 was lopsided (60/20 users), phase 2 is lopsided the other way (10/50): the
    report and the SRM alert both count phase 2's units only, and agree on the p-value."""
    ensure_default_alert_rules()
    AlertRule.objects.exclude(metric=AlertRule.Metric.SRM).update(enabled=False)
    experiment, control, smart = make_experiment()
    first = experiment.phases.get()
    second = Phase.objects.create(
        experiment=experiment,
        number=2,
        hash_seed="second",
        arm_keys=["council", "smart"],
        weights=[0.5, 0.5],
    )
    Assignment.objects.bulk_create(
        [
            Assignment(
                experiment=experiment, phase=phase, arm=arm, unit_id=f"{phase.number}-{arm.key}-{i}"
            )
            for phase, arm, count in (
                (first, control, 60),
                (first, smart, 20),
                (second, control, 10),
                (second, smart, 50),
            )
            for i in range(count)
        ]
    )
    report = reports.experiment_report(experiment=experiment)
    assert report["srm"]["result"]["observed"] == [10, 50]
    [alert] = alerts_for(metrics=dashboard_metrics(window="24h"))
    assert "council 10" in alert.message and "smart 50" in alert.message
    assert alert.value == pytest.approx(report["srm"]["result"]["p_value"], rel=1e-12)
