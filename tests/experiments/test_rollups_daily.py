"""Daily compaction of the hourly rollups: built once per closed day, rebuilt when the
hourly rows change, and read exactly like the hourly rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from experiments.metrics import (
    ReadPlan,
    breakdown,
    cube,
    dashboard_metrics,
    read_plan,
    totals_of,
    window_resolve,
)
from experiments.models import CallRollup, CallRollupDaily, CallRollupDay
from experiments.models.rollups import RollupMeasures
from experiments.rollups import rollups_rebuild
from experiments.rollups_daily import (
    SUM_FIELDS,
    compacted_until,
    daily_rollups_sync,
    day_start,
)
from tests.metrics_factories import make_calls, make_experiment, recent_hour

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def _traffic():
    experiment, control, smart = make_experiment()
    specs = []
    for hours in range(0, 24 * 5, 5):
        specs.append(
            {
                "completed_at": recent_hour(hours),
                "experiment": experiment,
                "arm": smart,
                "complexity": ("simple", "medium", "complex")[hours % 3],
                "cost_usd": Decimal("0.0015") * (hours % 4 + 1),
            }
        )
        specs.append(
            {
                "completed_at": recent_hour(hours),
                "experiment": experiment,
                "arm": control,
                "strategy": "original_council",
                "tier": "premium",
                "status": "error" if hours % 7 == 0 else "success",
            }
        )
    make_calls(specs)


def test_sum_fields_are_every_measure_but_the_histograms():
    """The compacted sums follow RollupMeasures (a new measure there is compacted too)."""
    measures = {field.name for field in RollupMeasures._meta.fields}
    assert set(SUM_FIELDS) == measures - {"latency_hist", "confidence_hist", "updated_at"}


def test_sync_compacts_each_closed_day_once():
    """Closed days are compacted, today is not; a second sync finds nothing to do."""
    _traffic()
    rebuilt = daily_rollups_sync()
    today = day_start(datetime.now(UTC))
    assert rebuilt and all(day < compacted_until() <= today for day in rebuilt)
    assert CallRollupDay.objects.count() == len(rebuilt)
    assert not CallRollupDaily.objects.filter(bucket_start__gte=today).exists()
    assert daily_rollups_sync() == []


def test_compacted_day_sums_equal_its_hourly_rows():
    """Each compacted day holds exactly the sums of its hourly rows."""
    _traffic()
    daily_rollups_sync()
    for state in CallRollupDay.objects.all():
        day = state.bucket_start
        hourly = CallRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=day + DAY)
        daily = CallRollupDaily.objects.filter(bucket_start=day)
        for name in ("n", "escalated_n", "cost_usd_sum", "latency_ms_sum", "confidence_n"):
            assert sum(getattr(row, name) for row in daily) == pytest.approx(
                sum(getattr(row, name) for row in hourly)
            ), (day, name)
        assert state.source_rows == hourly.count()


def test_reading_through_daily_rows_gives_the_hourly_answer():
    """The cube over a week read via compacted days equals the all-hourly reading, in
    total and per complexity, figure for figure."""
    _traffic()
    daily_rollups_sync()
    window = window_resolve("7d")
    mixed = read_plan(window.since, window.until, compacted_until=compacted_until())
    hourly = read_plan(window.since, window.until, compacted_until=None)
    assert mixed.days_until is not None and hourly.days_until is None
    assert totals_of(cube(plan=mixed)).figures() == pytest.approx(
        totals_of(cube(plan=hourly)).figures()
    )
    by_mixed = breakdown(cube(plan=mixed), "complexity", requests_total=1)
    by_hourly = breakdown(cube(plan=hourly), "complexity", requests_total=1)
    assert list(by_mixed) == list(by_hourly)
    for name in by_hourly:
        assert by_mixed[name] == pytest.approx(by_hourly[name])


def test_a_rebuild_of_the_hourly_rows_recompacts_every_day():
    """rollups_rebuild() gives the hourly rows new ids: every day's fingerprint changes and
    the next sync rebuilds all of them, picking up calls added meanwhile."""
    _traffic()
    first = daily_rollups_sync()
    make_calls([{"completed_at": recent_hour(50)}], rebuild=False)
    rollups_rebuild()
    assert sorted(daily_rollups_sync()) == sorted(first)
    day = day_start(recent_hour(50))
    hourly_n = sum(
        CallRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=day + DAY).values_list(
            "n", flat=True
        )
    )
    assert (
        sum(CallRollupDaily.objects.filter(bucket_start=day).values_list("n", flat=True))
        == hourly_n
    )


def test_days_whose_hourly_rows_are_gone_are_dropped():
    """Deleting the hourly rows of a day removes its compaction on the next sync."""
    _traffic()
    daily_rollups_sync()
    day = CallRollupDay.objects.order_by("bucket_start").first().bucket_start
    CallRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=day + DAY).delete()
    daily_rollups_sync()
    assert not CallRollupDay.objects.filter(bucket_start=day).exists()
    assert not CallRollupDaily.objects.filter(bucket_start=day).exists()


def test_dashboard_figures_do_not_depend_on_compaction():
    """The 7-day dashboard equals the same figures read hour by hour."""
    _traffic()
    compacted = dashboard_metrics(window="7d")
    assert CallRollupDaily.objects.exists()
    plan = read_plan(compacted.window.since, compacted.window.until, compacted_until=None)
    hourly = totals_of(row for row in cube(plan=plan) if not row["is_shadow"])
    assert compacted.totals.figures() == pytest.approx(hourly.figures())


@pytest.mark.parametrize(
    ("since", "until", "boundary", "expected"),
    [
        # Day-aligned week, boundary today: days from the daily rows, today hourly.
        (
            datetime(2026, 11, 14, tzinfo=UTC),
            datetime(2026, 11, 20, 13, tzinfo=UTC),
            datetime(2026, 11, 20, tzinfo=UTC),
            ReadPlan(
                datetime(2026, 11, 14, tzinfo=UTC),
                datetime(2026, 11, 20, tzinfo=UTC),
                ((datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 20, 13, tzinfo=UTC)),),
            ),
        ),
        # Starting mid-day: that day's hours hourly, then whole days.
        (
            datetime(2026, 11, 17, 13, tzinfo=UTC),
            datetime(2026, 11, 20, 13, tzinfo=UTC),
            datetime(2026, 11, 20, tzinfo=UTC),
            ReadPlan(
                datetime(2026, 11, 18, tzinfo=UTC),
                datetime(2026, 11, 20, tzinfo=UTC),
                (
                    (datetime(2026, 11, 17, 13, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC)),
                    (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 20, 13, tzinfo=UTC)),
                ),
            ),
        ),
        # No whole compacted day inside: all hourly.
        (
            datetime(2026, 11, 19, 13, tzinfo=UTC),
            datetime(2026, 11, 20, 13, tzinfo=UTC),
            datetime(2026, 11, 20, tzinfo=UTC),
            ReadPlan(
                hours=(
                    (
                        datetime(2026, 11, 19, 13, tzinfo=UTC),
                        datetime(2026, 11, 20, 13, tzinfo=UTC),
                    ),
                )
            ),
        ),
        # All time: every compacted day, then the rest hourly.
        (
            None,
            datetime(2026, 11, 20, 13, tzinfo=UTC),
            datetime(2026, 11, 20, tzinfo=UTC),
            ReadPlan(
                None,
                datetime(2026, 11, 20, tzinfo=UTC),
                ((datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 20, 13, tzinfo=UTC)),),
            ),
        ),
    ],
)
def test_read_plan_splits_windows_into_days_and_hours(since, until, boundary, expected):
    """Whole compacted days come from the daily rows, the edges from the hourly rows."""
    assert read_plan(since, until, compacted_until=boundary) == expected
