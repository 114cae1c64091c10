"""Alert rules and their evaluation: the guide's thresholds, error-rate baseline, SRM and
guardrails; pure evaluation first, then measured from the database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from experiments.alerts import (
    AlertSnapshot,
    ArmSnapshot,
    ErrorBaseline,
    ExperimentSnapshot,
    Rule,
    alerts_evaluate,
    alerts_for,
    srm_p_value,
)
from experiments.analysis.sums import CallSums
from experiments.metrics import dashboard_metrics
from experiments.models import AlertRule, Assignment
from experiments.stats.ratio import RatioSums
from tests.metrics_factories import (
    ensure_default_alert_rules,
    make_calls,
    make_experiment,
    recent_hour,
)


def rule(metric: str, threshold: float | None, **fields) -> Rule:
    return Rule(
        key=fields.pop("key", metric),
        name=metric,
        metric=metric,
        threshold=threshold,
        level=fields.pop("level", "warning"),
        action=fields.pop("action", f"do something about {metric}"),
        **fields,
    )


def snapshot(**fields) -> AlertSnapshot:
    values = {
        "period_label": "last 7 days",
        "requests": 1000,
        "confidence_n": 1000,
        "avg_confidence": 0.8,
        "escalation_rate": 0.1,
        "cost_per_request_usd": 0.002,
    }
    values.update(fields)
    return AlertSnapshot(**values)


# --- pure evaluation --------------------------------------------------------------------


def test_healthy_figures_raise_no_alert():
    """Figures inside every guide threshold raise nothing."""
    rules = [
        rule("avg_confidence", 0.6),
        rule("escalation_rate", 30),
        rule("cost_per_request_usd", 0.01),
    ]
    assert alerts_evaluate(rules, snapshot()) == []


def test_low_confidence_alert_states_the_value_and_the_action():
    """Average confidence under 0.6 fires with the measured value, level and action."""
    [alert] = alerts_evaluate(
        [rule("avg_confidence", 0.6, action="Use better models")], snapshot(avg_confidence=0.523)
    )
    assert alert.level == "warning"
    assert "0.523" in alert.message and "0.6" in alert.message
    assert alert.action == "Use better models"
    assert alert.value == pytest.approx(0.523)


def test_escalation_and_cost_alerts_fire_above_their_thresholds():
    """Escalation over 30% and cost over $0.01 per request fire, each with its number."""
    alerts = alerts_evaluate(
        [rule("escalation_rate", 30), rule("cost_per_request_usd", 0.01)],
        snapshot(escalation_rate=0.35, cost_per_request_usd=0.0123),
    )
    messages = {alert.metric: alert.message for alert in alerts}
    assert "35.0%" in messages["escalation_rate"]
    assert "$0.0123" in messages["cost_per_request_usd"]


def test_alerts_wait_for_the_minimum_number_of_requests():
    """Below a rule's min_requests nothing fires, however bad the figure."""
    assert (
        alerts_evaluate(
            [rule("avg_confidence", 0.6, min_requests=50)],
            snapshot(requests=49, avg_confidence=0.1),
        )
        == []
    )


def test_alerts_come_most_severe_first():
    """Critical before warning before info."""
    alerts = alerts_evaluate(
        [
            rule("avg_confidence", 0.6, level="info", key="a"),
            rule("escalation_rate", 30, level="critical", key="b"),
            rule("cost_per_request_usd", 0.01, level="warning", key="c"),
        ],
        snapshot(avg_confidence=0.5, escalation_rate=0.5, cost_per_request_usd=1.0),
    )
    assert [alert.level for alert in alerts] == ["critical", "warning", "info"]


def test_error_rate_alert_compares_with_its_baseline():
    """The error rate fires only when it is more than the threshold in points above the
    rate of the baseline period."""
    baseline = ErrorBaseline(
        baseline_hours=168,
        period_label="last 24 hours",
        requests=500,
        error_rate=0.05,
        baseline_requests=5000,
        baseline_error_rate=0.02,
    )
    [alert] = alerts_evaluate(
        [rule("error_rate_rise", 1.0, level="critical")], snapshot(error_baselines=(baseline,))
    )
    assert alert.value == pytest.approx(3.0)
    assert "5.0%" in alert.message and "2.0%" in alert.message
    calm = ErrorBaseline(168, "last 24 hours", 500, 0.025, 5000, 0.02)
    assert alerts_evaluate([rule("error_rate_rise", 1.0)], snapshot(error_baselines=(calm,))) == []


def test_error_rate_alert_needs_a_baseline_with_data():
    """No baseline traffic, no comparison, no alert."""
    empty = ErrorBaseline(168, "last 24 hours", 500, 0.5, 0, 0.0)
    assert alerts_evaluate([rule("error_rate_rise", 1.0)], snapshot(error_baselines=(empty,))) == []


def _experiment(arms, **fields) -> ExperimentSnapshot:
    values = {
        "key": "exp",
        "minimum_sample_per_arm": 100,
        "guardrail_quality_drop_pct": 2.0,
        "guardrail_error_rate_rise_pts": 1.0,
        "guardrail_latency_p95_rise_pct": 10.0,
        "arms": tuple(arms),
        "alpha": 0.05,
        "sequential_testing": False,
    }
    values.update(fields)
    return ExperimentSnapshot(**values)


def test_srm_alert_fires_on_a_lopsided_split_only():
    """1,000 vs 1,300 units on a 50/50 split is a mismatch (p < 0.001); 1,000 vs 1,020 is not."""
    lopsided = _experiment([ArmSnapshot("a", True, 0.5, 1000), ArmSnapshot("b", False, 0.5, 1300)])
    [alert] = alerts_evaluate(
        [rule("srm", 0.001, level="critical")], snapshot(experiments=(lopsided,))
    )
    assert alert.experiment == "exp"
    assert "1,300" in alert.message
    assert alert.value < 0.001
    fair = _experiment([ArmSnapshot("a", True, 0.5, 1000), ArmSnapshot("b", False, 0.5, 1020)])
    assert alerts_evaluate([rule("srm", 0.001)], snapshot(experiments=(fair,))) == []


def test_srm_p_value_matches_scipy_and_refuses_tiny_samples():
    """The p-value is scipy's chi-square; expected counts under 5 give None."""
    from scipy import stats

    assert srm_p_value([1000, 1300], [0.5, 0.5]) == pytest.approx(
        stats.chisquare([1000, 1300], [1150, 1150]).pvalue
    )
    assert srm_p_value([3, 4], [0.5, 0.5]) is None


def _agreement(mean: float, units: int) -> RatioSums:
    """One agreement signal per unit, half at ``mean - 0.05`` and half at ``mean + 0.05``."""
    return RatioSums.from_units((1.0, mean + (0.05 if u % 2 else -0.05)) for u in range(units))


def _arm(key, control, *, requests=2000, errors=20, agreement=None, latency_ms=500):
    n = requests
    hist = [0] * 122
    from experiments.stats.histograms import latency_bucket

    hist[latency_bucket(latency_ms)] = n
    return ArmSnapshot(
        key=key,
        is_control=control,
        weight=0.5,
        units=n,
        calls=CallSums(n=n, errors=errors, success_n=n - errors),
        quality_signals=None if agreement is None else _agreement(*agreement),
        latency_hist=tuple(hist),
    )


def test_guardrail_alert_fires_when_quality_drop_is_ruled_beyond_the_margin():
    """Mean agreement 0.70 with the control over 200 units is ruled below the 0.9 floor:
    the quality guardrail (the experiment's quality signal, not final_score) fails."""
    experiment = _experiment([_arm("council", True), _arm("smart", False, agreement=(0.70, 200))])
    alerts = alerts_evaluate(
        [rule("guardrail", None, level="critical")], snapshot(experiments=(experiment,))
    )
    assert len(alerts) == 1
    assert "quality (agreement)" in alerts[0].message and "smart" in alerts[0].message
    assert "below 0.9" in alerts[0].message
    assert alerts[0].value == pytest.approx(20.0)


def test_guardrail_alerts_for_error_rate_and_latency_rises():
    """Errors 1% -> 5% and p95 500 -> 900 ms both fail their guardrails."""
    experiment = _experiment(
        [_arm("council", True), _arm("smart", False, errors=100, latency_ms=900)]
    )
    alerts = alerts_evaluate([rule("guardrail", None)], snapshot(experiments=(experiment,)))
    messages = " ".join(alert.message for alert in alerts)
    assert "error rate" in messages and "latency p95" in messages
    assert len(alerts) == 2


def test_guardrail_stays_quiet_when_equal_or_under_the_minimum_sample():
    """Equal arms pass; a bad arm under the experiment's minimum sample is not judged yet."""
    equal = _experiment([_arm("council", True), _arm("smart", False, agreement=(0.97, 200))])
    assert alerts_evaluate([rule("guardrail", None)], snapshot(experiments=(equal,))) == []
    small = _experiment(
        [
            _arm("council", True, requests=50),
            _arm("smart", False, requests=50, agreement=(0.1, 50)),
        ]
    )
    assert alerts_evaluate([rule("guardrail", None)], snapshot(experiments=(small,))) == []


# --- the model ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_data_migration_seeds_the_guide_defaults():
    """The seeded rules hold the guide's thresholds: confidence < 0.6, escalation > 30%,
    cost > $0.01, plus error-rate rise, SRM and guardrail rules, each with an action."""
    ensure_default_alert_rules()
    rules = {rule.key: rule for rule in AlertRule.objects.all()}
    assert rules["low-confidence"].threshold == Decimal("0.6")
    assert rules["high-escalation"].threshold == Decimal("30")
    assert rules["high-cost"].threshold == Decimal("0.01")
    assert rules["srm"].threshold == Decimal("0.001")
    assert rules["guardrail"].threshold is None
    assert {"error-rate-rise", "srm", "guardrail"} <= set(rules)
    assert "better models" in rules["low-confidence"].action
    assert "classification" in rules["high-escalation"].action
    assert "cost optimization" in rules["high-cost"].action.lower()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("metric", "threshold", "field_message"),
    [
        ("avg_confidence", Decimal("1.5"), "between 0 and 1"),
        ("escalation_rate", Decimal("130"), "percentage"),
        ("srm", Decimal("2"), "p-value"),
        ("avg_confidence", None, "Set a threshold"),
    ],
)
def test_rule_validation_explains_the_unit(metric, threshold, field_message):
    """A threshold outside its metric's unit is refused with a message saying the unit."""
    candidate = AlertRule(key="x", name="x", metric=metric, threshold=threshold, action="a")
    with pytest.raises(ValidationError, match=field_message):
        candidate.full_clean()


# --- measured from the database ------------------------------------------------------------


@pytest.mark.django_db
def test_alerts_for_measures_low_confidence_from_calls():
    """Seeded low-confidence calls make the default low-confidence rule fire."""
    ensure_default_alert_rules()
    make_calls([{"confidence": 0.4}] * 25)
    alerts = alerts_for(metrics=dashboard_metrics(window="24h"))
    assert [alert.rule for alert in alerts] == ["low-confidence"]
    assert "0.400" in alerts[0].message


@pytest.mark.django_db
def test_disabled_rules_do_not_fire():
    """Turning a rule off in the admin silences it."""
    ensure_default_alert_rules()
    AlertRule.objects.filter(key="low-confidence").update(enabled=False)
    make_calls([{"confidence": 0.4}] * 25)
    assert alerts_for(metrics=dashboard_metrics(window="24h")) == []


@pytest.mark.django_db
def test_error_rate_rise_measured_against_the_previous_week():
    """Errors at 20% in the last day against 0% in the week before fire the critical rule."""
    ensure_default_alert_rules()
    make_calls(
        [{"completed_at": recent_hour(48)}] * 40
        + [{"completed_at": recent_hour(1)}] * 20
        + [{"completed_at": recent_hour(1), "status": "error", "confidence": None}] * 5
    )
    alerts = alerts_for(metrics=dashboard_metrics(window="24h"))
    [alert] = [alert for alert in alerts if alert.rule == "error-rate-rise"]
    assert alert.level == "critical"
    assert alert.value == pytest.approx(20.0)


@pytest.mark.django_db
def test_srm_measured_from_assignments_of_the_current_phase():
    """Units assigned 60/20 on a 50/50 experiment trigger the SRM alert naming it."""
    ensure_default_alert_rules()
    experiment, control, smart = make_experiment()
    phase = experiment.phases.get()
    Assignment.objects.bulk_create(
        [
            Assignment(experiment=experiment, phase=phase, arm=control, unit_id=f"c{i}")
            for i in range(60)
        ]
        + [
            Assignment(experiment=experiment, phase=phase, arm=smart, unit_id=f"s{i}")
            for i in range(20)
        ]
    )
    alerts = alerts_for(metrics=dashboard_metrics(window="24h"))
    [alert] = [alert for alert in alerts if alert.rule == "srm"]
    assert alert.experiment == "smart-vs-council"
    assert "council 60" in alert.message


@pytest.mark.django_db
def test_alerts_take_a_fixed_number_of_queries(django_assert_num_queries):
    """Rules, error baseline, experiments with arms and phases, units, the phases' call
    sums, latency histograms, unit sums and quality-signal sums: ten queries, however
    many experiments."""
    ensure_default_alert_rules()
    make_experiment()
    make_experiment("second")
    make_calls([{"confidence": 0.4}] * 25)
    measured = dashboard_metrics(window="24h")
    with django_assert_num_queries(10):
        alerts_for(metrics=measured)
