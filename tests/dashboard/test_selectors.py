"""The dashboard's own reads: cost per model over time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dashboard.selectors import cost_by_model_series
from experiments.models import CallRollup

pytestmark = pytest.mark.django_db


def _rollup(hour: datetime, model: str, cost: str, n: int, *, shadow: bool = False) -> None:
    CallRollup.objects.create(
        bucket_start=hour, model=model, cost_usd_sum=Decimal(cost), n=n, is_shadow=shadow
    )


def test_hours_fold_into_utc_days_and_shadow_calls_are_left_out():
    _rollup(datetime(2026, 3, 1, 0, tzinfo=UTC), "gpt-4.1-mini", "0.10", 3)
    _rollup(datetime(2026, 3, 1, 23, tzinfo=UTC), "gpt-4.1-mini", "0.20", 2)
    _rollup(datetime(2026, 3, 2, 5, tzinfo=UTC), "gpt-4.1-mini", "0.05", 1)
    _rollup(datetime(2026, 3, 1, 5, tzinfo=UTC), "claude-sonnet-4", "1.00", 4)
    _rollup(datetime(2026, 3, 1, 6, tzinfo=UTC), "gpt-4.1-mini", "9.00", 9, shadow=True)

    daily = cost_by_model_series(
        since=None, until=datetime(2026, 3, 3, tzinfo=UTC), granularity="day"
    )

    assert list(daily) == ["claude-sonnet-4", "gpt-4.1-mini"]  # largest spender first
    assert daily["gpt-4.1-mini"] == [
        {
            "bucket_start": "2026-03-01T00:00:00+00:00",
            "cost_usd": pytest.approx(0.30),
            "requests": 5,
        },
        {
            "bucket_start": "2026-03-02T00:00:00+00:00",
            "cost_usd": pytest.approx(0.05),
            "requests": 1,
        },
    ]
    hourly = cost_by_model_series(
        since=datetime(2026, 3, 1, 12, tzinfo=UTC),
        until=datetime(2026, 3, 3, tzinfo=UTC),
        granularity="hour",
    )
    assert [point["bucket_start"] for point in hourly["gpt-4.1-mini"]] == [
        "2026-03-01T23:00:00+00:00",
        "2026-03-02T05:00:00+00:00",
    ]
