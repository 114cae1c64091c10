"""UnitRollup: per-unit sums kept by rollup_apply, recomputed by rollups_rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from experiments.models import Arm, Experiment, Phase, RoutedCall, UnitRollup
from experiments.rollups import rollup_apply, rollups_rebuild

pytestmark = pytest.mark.django_db
_sequence = count()
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def arm():
    experiment = Experiment.objects.create(key="units", name="Units")
    Phase.objects.create(
        experiment=experiment, number=1, hash_seed="s", arm_keys=["a"], weights=[1]
    )
    return Arm.objects.create(experiment=experiment, key="a", strategy="smart_routing")


def finish(arm, unit_id, *, status="success", cost="0.0020", minutes=0, **fields):
    call = RoutedCall.objects.create(
        idempotency_key=f"k{next(_sequence)}",
        status=status,
        experiment=arm.experiment,
        arm=arm,
        phase=arm.experiment.phases.get(),
        unit_id=unit_id,
        cost_usd=Decimal(cost),
        latency_ms=None if status == "error" else 100.0 + minutes,
        confidence=None if status == "error" else 0.8,
        final_score=None if status == "error" else 70.0,
        completed_at=START + timedelta(minutes=minutes),
        **fields,
    )
    RoutedCall.objects.filter(pk=call.pk).update(created_at=START + timedelta(minutes=minutes))
    call.refresh_from_db()
    rollup_apply(call=call)
    return call


def _rows():
    fields = [
        f.name for f in UnitRollup._meta.concrete_fields if f.name not in ("id", "updated_at")
    ]
    return sorted(UnitRollup.objects.values_list(*fields))


def test_calls_of_a_unit_add_up_in_one_row_with_its_first_exposure(arm):
    """Three calls of one unit: one row with their sums and the earliest call time."""
    finish(arm, "u1", minutes=30, escalated=True)
    finish(arm, "u1", minutes=10, cost="0.0010")
    finish(arm, "u1", status="error", minutes=50, cost="0")
    finish(arm, "u2", minutes=5)
    row = UnitRollup.objects.get(unit_id="u1")
    assert (row.n, row.errors, row.escalated_n) == (3, 1, 1)
    assert row.cost_usd_sum == pytest.approx(0.003)
    assert (row.latency_n, row.latency_ms_sum) == (2, pytest.approx(240.0))
    assert (row.quality_n, row.confidence_n) == (2, 2)
    assert row.first_exposure_at == START + timedelta(minutes=10)
    assert UnitRollup.objects.count() == 2


def test_shadow_calls_and_calls_outside_experiments_are_not_units(arm):
    """Shadow twins and calls without an arm leave UnitRollup alone."""
    finish(arm, "u1", is_shadow=True)
    call = RoutedCall.objects.create(idempotency_key="free", status="success", unit_id="u9")
    rollup_apply(call=call)
    assert not UnitRollup.objects.exists()


def test_calls_without_a_unit_id_are_their_own_unit(arm):
    """A request-level call (no unit_id) becomes a unit of one call."""
    first, second = finish(arm, ""), finish(arm, "")
    assert sorted(UnitRollup.objects.values_list("unit_id", flat=True)) == sorted(
        [f"call:{first.pk}", f"call:{second.pk}"]
    )


def test_rebuild_recomputes_the_rows_rollup_apply_wrote(arm):
    """rollups_rebuild gives exactly the rows the per-call upserts built."""
    for index in range(12):
        finish(arm, f"u{index % 4}", minutes=index, status="error" if index == 7 else "success")
    finish(arm, "", minutes=3)
    applied = _rows()
    rollups_rebuild()
    assert _rows() == applied


def test_request_level_experiments_keep_no_unit_rows(arm):
    """An experiment that assigns requests analyses calls: no UnitRollup rows, applied
    or rebuilt."""
    Experiment.objects.filter(pk=arm.experiment_id).update(unit_type="request")
    arm.experiment.refresh_from_db()
    finish(arm, "u1")
    assert not UnitRollup.objects.exists()
    rollups_rebuild()
    assert not UnitRollup.objects.exists()


def test_the_backfill_migration_builds_the_rows_rollup_apply_would(arm):
    """Installations with calls from before UnitRollup get its rows from the raw calls;
    a second run changes nothing."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("experiments.migrations.0012_unit_rollup_backfill").backfill
    for index in range(9):
        finish(arm, f"u{index % 3}", minutes=index, status="error" if index == 4 else "success")
    finish(arm, "", minutes=2)
    applied = _rows()
    UnitRollup.objects.all().delete()
    backfill(apps, None)
    assert _rows() == applied
    backfill(apps, None)
    assert _rows() == applied
