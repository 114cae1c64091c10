"""CallRollup maintenance: rollup_apply per finished call, rollups_rebuild from raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from experiments import rollups
from experiments.models import Arm, ArmRollup, CallRollup, Experiment, RoutedCall
from experiments.rollups import rollup_apply, rollups_rebuild
from experiments.stats.histograms import (
    CONFIDENCE_HIST_SIZE,
    LATENCY_HIST_SIZE,
    confidence_bucket,
    latency_bucket,
)

pytestmark = pytest.mark.django_db
_sequence = count()
HOUR = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def make_call(**fields) -> RoutedCall:
    defaults = {
        "idempotency_key": f"call-{next(_sequence)}",
        "kind": RoutedCall.Kind.EXECUTE,
        "status": RoutedCall.Status.SUCCESS,
        "strategy": "smart_routing",
        "complexity": "simple",
        "tier": "mini",
        "model": "gpt-4o-mini",
        "provider": "simulated",
        "task_type": "analysis",
        "cost_usd": Decimal("0.0010"),
        "baseline_cost_usd": Decimal("0.0100"),
        "latency_ms": 120.0,
        "confidence": 0.8,
        "input_tokens": 100,
        "output_tokens": 50,
        "completed_at": HOUR + timedelta(minutes=5),
    }
    defaults.update(fields)
    return RoutedCall.objects.create(**defaults)


@pytest.fixture
def experiment_arm():
    experiment = Experiment.objects.create(key="smart-vs-council", name="Smart vs council")
    arm = Arm.objects.create(experiment=experiment, key="smart", strategy="smart_routing")
    return experiment, arm


def test_first_call_creates_a_row_with_its_values():
    """A finished call creates its hourly row holding exactly its own sums and buckets."""
    call = make_call(latency_ms=250.0, confidence=0.58, final_score=81.0, escalated=True)
    rollup_apply(call=call)
    row = CallRollup.objects.get()
    assert row.bucket_start == HOUR
    assert (row.experiment_key, row.arm_key, row.status) == ("", "", "success")
    assert row.n == 1 and row.escalated_n == 1
    assert row.cost_usd_sum == Decimal("0.0010")
    assert row.baseline_cost_usd_sum == Decimal("0.0100")
    assert row.cost_usd_sumsq == pytest.approx(1e-6)
    assert (row.latency_n, row.latency_ms_sum, row.latency_ms_sumsq) == (1, 250.0, 62500.0)
    assert (row.quality_n, row.quality_sum) == (1, 81.0)
    assert len(row.latency_hist) == LATENCY_HIST_SIZE
    assert len(row.confidence_hist) == CONFIDENCE_HIST_SIZE
    assert row.latency_hist[latency_bucket(250.0)] == 1 and sum(row.latency_hist) == 1
    assert row.confidence_hist[29] == 1 and sum(row.confidence_hist) == 1


def test_calls_of_the_same_key_add_up_in_one_row(experiment_arm):
    """Two calls with the same key and hour increment one row; missing measures are not counted."""
    experiment, arm = experiment_arm
    first = make_call(experiment=experiment, arm=arm, latency_ms=100.0, confidence=0.9)
    second = make_call(
        experiment=experiment, arm=arm, latency_ms=None, confidence=None, completed_at=HOUR
    )
    rollup_apply(call=first)
    rollup_apply(call=second)
    row = CallRollup.objects.get()
    assert (row.experiment_key, row.arm_key) == ("smart-vs-council", "smart")
    assert row.n == 2
    assert row.latency_n == 1 and row.confidence_n == 1
    assert row.cost_usd_sum == Decimal("0.0020")
    assert sum(row.latency_hist) == 1


def test_different_hours_and_statuses_get_different_rows():
    """The hour, the status and every other key field split rows."""
    rollup_apply(call=make_call())
    rollup_apply(call=make_call(completed_at=HOUR + timedelta(hours=1)))
    rollup_apply(call=make_call(status=RoutedCall.Status.ERROR, latency_ms=None))
    rollup_apply(call=make_call(is_shadow=True))
    assert CallRollup.objects.count() == 4


def test_unfinished_calls_are_ignored():
    """Queued or running calls add nothing."""
    rollup_apply(call=make_call(status=RoutedCall.Status.QUEUED))
    rollup_apply(call=make_call(status=RoutedCall.Status.RUNNING))
    assert CallRollup.objects.count() == 0


def test_a_row_another_worker_created_is_added_to():
    """When another worker created the row first, our call is added to that row (sums and
    histogram buckets), not lost and not a second row."""
    competitor = make_call(latency_ms=250.0, confidence=0.58)
    ours = make_call(latency_ms=250.0, confidence=None, cost_usd=Decimal("0.0030"))
    rollup_apply(call=competitor)
    rollup_apply(call=ours)
    row = CallRollup.objects.get()
    assert row.n == 2 and row.latency_n == 2 and row.confidence_n == 1
    assert row.cost_usd_sum == Decimal("0.0040")
    assert row.latency_hist[latency_bucket(250.0)] == 2 and sum(row.latency_hist) == 2
    assert row.confidence_hist[29] == 1 and sum(row.confidence_hist) == 1
    arm_row = ArmRollup.objects.get()
    assert arm_row.n == 2 and arm_row.latency_hist == row.latency_hist


def test_each_rollup_row_is_one_statement(django_assert_num_queries):
    """Applying a call is one INSERT ... ON CONFLICT DO UPDATE per rollup table: no read,
    no lock, no retry, whether the row exists or not."""
    first, second = make_call(), make_call()
    with django_assert_num_queries(2) as context:
        rollup_apply(call=first)
    assert all("ON CONFLICT" in query["sql"] for query in context.captured_queries)
    with django_assert_num_queries(2):
        rollup_apply(call=second)
    assert CallRollup.objects.get().n == 2


def test_rebuild_matches_incremental_application(experiment_arm):
    """rollups_rebuild recomputes from raw rows exactly what rollup_apply accumulated."""
    experiment, arm = experiment_arm
    calls = []
    for index in range(40):
        calls.append(
            make_call(
                experiment=experiment if index % 2 else None,
                arm=arm if index % 2 else None,
                status=RoutedCall.Status.ERROR if index % 7 == 0 else RoutedCall.Status.SUCCESS,
                latency_ms=None if index % 5 == 0 else 0.5 + index * 37.3,
                confidence=None if index % 6 == 0 else (index % 50) / 50,
                final_score=None if index % 3 else 40 + index,
                escalated=index % 4 == 0,
                cost_usd=Decimal("0.0001") * (index + 1),
                completed_at=HOUR + timedelta(minutes=17 * index),
            )
        )
    make_call(status=RoutedCall.Status.QUEUED, completed_at=None)
    for call in calls:
        rollup_apply(call=call)
    fields = [f.name for f in CallRollup._meta.fields if f.name not in {"id", "updated_at"}]
    incremental = sorted(
        CallRollup.objects.values_list(*fields), key=lambda row: tuple(map(str, row[:12]))
    )
    assert rollups_rebuild() == len(incremental)
    rebuilt = sorted(
        CallRollup.objects.values_list(*fields), key=lambda row: tuple(map(str, row[:12]))
    )
    assert len(rebuilt) == len(incremental)
    assert_rows_equal(fields, incremental, rebuilt)
    coarse_keys = set(
        CallRollup.objects.values_list(
            "bucket_start", "experiment_key", "arm_key", "status", "is_shadow"
        )
    )
    assert ArmRollup.objects.count() == len(coarse_keys)
    assert sum(ArmRollup.objects.values_list("n", flat=True)) == 40


def assert_rows_equal(fields, left_rows, right_rows):
    for left, right in zip(left_rows, right_rows, strict=True):
        for name, a, b in zip(fields, left, right, strict=True):
            if isinstance(a, float):
                assert a == pytest.approx(b, rel=1e-9), name
            else:
                assert a == b, name


def test_arm_rollups_are_the_call_rollups_summed_per_arm(experiment_arm):
    """Each ArmRollup row is the sum of the CallRollup rows with its (hour, experiment, arm,
    status, shadow), histograms included; incremental and rebuilt agree."""
    experiment, arm = experiment_arm
    for index in range(12):
        rollup_apply(
            call=make_call(
                experiment=experiment,
                arm=arm,
                model=("gpt-4o-mini", "gpt-4o", "claude")[index % 3],
                tier=("mini", "premium")[index % 2],
                latency_ms=50.0 * (index + 1),
                final_score=60.0 + index,
            )
        )
    arm_fields = [f.name for f in ArmRollup._meta.fields if f.name not in {"id", "updated_at"}]
    incremental = list(ArmRollup.objects.order_by("bucket_start").values_list(*arm_fields))
    assert len(incremental) == 1
    row = ArmRollup.objects.get()
    parts = CallRollup.objects.filter(experiment_key=experiment.key, arm_key="smart")
    assert parts.count() == 6
    assert row.n == sum(part.n for part in parts) == 12
    assert row.quality_sum == pytest.approx(sum(60.0 + i for i in range(12)))
    assert row.latency_hist == [
        sum(column) for column in zip(*(p.latency_hist for p in parts), strict=True)
    ]
    rollups_rebuild()
    rebuilt = list(ArmRollup.objects.order_by("bucket_start").values_list(*arm_fields))
    assert_rows_equal(arm_fields, incremental, rebuilt)


def test_sql_bucket_expressions_agree_with_python_on_edges():
    """The SQL bucket formulas put edge and near-edge values where the Python ones do."""
    latencies = [0.0, 0.999, 1.0, 1.122, 1.1221, 99.99, 100.0, 1000.0, 5e6]
    confidences = [0.0, 0.02, 0.58, 0.5799, 0.98, 0.999, 1.0]
    for index, latency in enumerate(latencies):
        make_call(latency_ms=latency, confidence=confidences[index % len(confidences)])
    for index, confidence in enumerate(confidences):
        make_call(latency_ms=latencies[index], confidence=confidence)
    rollups_rebuild()
    latency_hist = [0] * LATENCY_HIST_SIZE
    confidence_hist = [0] * CONFIDENCE_HIST_SIZE
    for call in RoutedCall.objects.all():
        latency_hist[latency_bucket(call.latency_ms)] += 1
        confidence_hist[confidence_bucket(call.confidence)] += 1
    row = CallRollup.objects.get()
    assert row.latency_hist == latency_hist
    assert row.confidence_hist == confidence_hist


def test_rebuild_replaces_stale_rows():
    """Rows that no raw call backs any more disappear on rebuild."""
    CallRollup.objects.create(bucket_start=HOUR, model="ghost", n=5)
    ArmRollup.objects.create(bucket_start=HOUR, n=5)
    assert rollups_rebuild() == 0
    assert not CallRollup.objects.exists()
    assert not ArmRollup.objects.exists()


def test_hour_start_truncates_to_utc():
    """Timestamps in other zones land in their UTC hour."""
    from zoneinfo import ZoneInfo

    local = datetime(2026, 11, 20, 10, 45, tzinfo=ZoneInfo("Europe/Berlin"))
    assert rollups.hour_start(local) == HOUR


def test_backfill_migration_sums_existing_call_rollups_into_arm_rollups(experiment_arm):
    """Installations with CallRollup rows from before ArmRollup get them summed per arm."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("experiments.migrations.0008_arm_rollup_backfill").backfill
    experiment, arm = experiment_arm
    for index in range(6):
        rollup_apply(
            call=make_call(
                experiment=experiment,
                arm=arm,
                model=("a", "b", "c")[index % 3],
                latency_ms=10.0 * (index + 1),
            )
        )
    expected = list(ArmRollup.objects.values_list("n", "latency_hist", "cost_usd_sum"))
    ArmRollup.objects.all().delete()
    backfill(apps, None)
    assert list(ArmRollup.objects.values_list("n", "latency_hist", "cost_usd_sum")) == expected
    backfill(apps, None)  # a second run changes nothing
    assert ArmRollup.objects.count() == len(expected)
