"""Reads of quality signals: unit-level sums in SQL, coverage, by day, judge vs feedback."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.models import QualitySignal, RoutedCall
from experiments.selectors_quality import (
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
