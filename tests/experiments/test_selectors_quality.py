"""Reads of quality signals: unit-level sums in SQL, coverage, by day, judge vs feedback."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from django.apps import apps as django_apps
from django.db import connection

from experiments.models import QualitySignal, RoutedCall
from experiments.selectors_quality import (
    _sums_sql,
    judge_feedback_agreement,
    quality_by_day,
    quality_sums,
    quality_sums_by_source,
    routed_call_by_public_id,
)
from experiments.stats.ratio import RatioSums
from tests.experiments.factories import make_experiment
from tests.quality_factories import add_signals

pytestmark = pytest.mark.django_db


def test_unit_sums_match_sums_computed_unit_by_unit(django_assert_num_queries):
    """Per arm, (n units, sum x, sum y, sums of squares and products) equal the Python
    reference over the same units; errors and other sources are left out; one query."""
    experiment = make_experiment()
    rng = np.random.default_rng(4)
    values = rng.uniform(0, 1, 30)
    calls = add_signals(
        experiment, "smart_routing", source="judge", values=values, calls_per_unit=3
    )
    add_signals(experiment, "smart_routing", source="feedback", values=[1.0, 0.0])
    QualitySignal.objects.create(call=calls[0], source="agreement", status="error", value=None)
    units: dict[str, list[float]] = {}
    for call, value in zip(calls, values, strict=True):
        units.setdefault(call.unit_id, []).append(float(value))
    expected = RatioSums.from_units((len(v), sum(v)) for v in units.values())
    with django_assert_num_queries(1):
        by_source = quality_sums_by_source(experiment=experiment)
    assert set(by_source) == {"judge", "feedback"}
    got = by_source["judge"]["smart_routing"]
    for name, value in expected.as_dict().items():
        assert getattr(got, name) == pytest.approx(value), name
    assert quality_sums(experiment=experiment, source="agreement") == {}


def test_quality_by_day_is_the_daily_mean_per_arm():
    experiment = make_experiment()
    add_signals(experiment, "smart_routing", source="agreement", values=[0.5, 1.0, 0.9])
    [day] = quality_by_day(experiment=experiment, source="agreement")
    assert day["arm"] == "smart_routing" and day["n"] == 3
    assert day["mean"] == pytest.approx(0.8)


def test_judge_and_feedback_agreement_counts_calls_with_both():
    """Judge win + good feedback agree; judge loss + good feedback do not; a judge tie
    agrees with either; a call with only one of them is not counted."""
    experiment = make_experiment()
    calls = add_signals(experiment, "smart_routing", source="feedback", values=[0.9, 0.8, 0.2, 0.7])
    for call, verdict in zip(calls[:3], [1.0, 0.0, 0.5], strict=True):
        QualitySignal.objects.create(call=call, source="judge", value=verdict)
    assert judge_feedback_agreement(experiment=experiment) == {
        "n": 3,
        "agree": 2,
        "rate": pytest.approx(2 / 3),
    }


def test_public_call_ids_name_routing_api_and_v1_calls():
    api_call = RoutedCall.objects.create(idempotency_key="x1")
    chat = RoutedCall.objects.create(idempotency_key="openai:chatcmpl-abc")
    assert routed_call_by_public_id(public_id=str(api_call.pk)) == api_call
    assert routed_call_by_public_id(public_id="chatcmpl-abc") == chat
    for unknown in ("0", "99999999999999999999", "abc", "chatcmpl-nope"):
        assert routed_call_by_public_id(public_id=unknown) is None


@pytest.mark.postgres
def test_a_signal_carries_its_calls_experiment_and_phase():
    """Saved one by one (the service's way), a signal copies its call's experiment and
    phase; a call outside any experiment gives a signal outside any experiment."""
    experiment = make_experiment()
    (call,) = add_signals(experiment, "smart_routing", source="judge", values=[0.5])
    signal = QualitySignal.objects.create(call=call, source="feedback", value=1.0)
    assert (signal.experiment_id, signal.phase_id) == (experiment.pk, call.phase_id)
    assert call.phase_id is not None
    lone = RoutedCall.objects.create(idempotency_key="lone", status=RoutedCall.Status.SUCCESS)
    assert QualitySignal.objects.create(call=lone, source="feedback", value=1.0).experiment is None


@pytest.mark.postgres
def test_the_migration_fills_experiment_and_phase_from_the_calls():
    """Signals recorded before the columns existed get them from their calls."""
    experiment = make_experiment()
    calls = add_signals(experiment, "smart_routing", source="judge", values=[0.2, 0.8])
    QualitySignal.objects.update(experiment=None, phase=None)
    migration = importlib.import_module(
        "experiments.migrations.0015_quality_signal_experiment_phase"
    )
    migration.backfill(django_apps, None)
    filled = set(QualitySignal.objects.values_list("experiment_id", "phase_id"))
    assert filled == {(experiment.pk, calls[0].phase_id)}
    assert quality_sums(experiment=experiment, source="judge")["smart_routing"].n == 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
@pytest.mark.parametrize("phase", [False, True])
def test_the_unit_sums_read_one_experiments_signals_by_index(phase):
    """The sums read the experiment's (or phase's) signals by their index, not every
    signal in the table, and look each call up by its key."""
    experiment = make_experiment()
    (call,) = add_signals(experiment, "smart_routing", source="judge", values=[0.5])
    params = [experiment.pk, "ok"] + ([call.phase_id] if phase else [])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + _sums_sql(by_phase=phase), params)
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert ("quality_phase" if phase else "quality_experiment") in plan, plan
    assert "SCAN s" not in plan and "SCAN c" not in plan, plan
