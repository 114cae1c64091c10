"""Keep :class:`CallRollupDaily` (closed UTC days) in step with the hourly rollups.

Why: over 1,000,000 calls the hourly table holds ~100,000+ rows (hours x combinations),
and grouping or summing histograms over all of them takes seconds on SQLite. A closed day
never changes (a call is rolled up into the hour it completes in, which is the current
one), so each day is compacted once into ~1/24 of the rows and read from there.

How it stays right without hooks into the writers: :func:`daily_rollups_sync` reads each
closed day's fingerprint from the hourly table (row count and highest id, one
index-only ``GROUP BY``), and rebuilds the days whose fingerprint differs from the one
stored when they were compacted. ``rollups_rebuild()`` recreates every hourly row (new
ids), so it invalidates every day; a day whose hourly rows are gone is dropped. Days are
compacted only once they ended ``GRACE`` ago, so a call finishing right at midnight still
lands before its day is compacted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone

from experiments.models import CallRollup, CallRollupDaily, CallRollupDay
from experiments.models.rollups import RollupMeasures
from experiments.rollups import KEY_FIELDS

#: A day is compacted once it ended this long ago.
GRACE = timedelta(hours=1)
#: The summed (non-key, non-histogram) fields shared by the hourly and daily rows.
SUM_FIELDS = tuple(
    field.name
    for field in RollupMeasures._meta.fields
    if field.name not in {"latency_hist", "confidence_hist", "updated_at"}
)
DAY_KEY_FIELDS = tuple(name for name in KEY_FIELDS if name != "bucket_start")
ONE_DAY = timedelta(days=1)


def day_start(moment: datetime) -> datetime:
    """00:00 UTC of the day holding ``moment``."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def compacted_until(now: datetime | None = None) -> datetime:
    """Days starting before this moment are (kept) compacted; later ones are read hourly."""
    return day_start((now or timezone.now()) - GRACE)


def hourly_fingerprints(*, until: datetime) -> dict[datetime, tuple[int, int]]:
    """(rows, highest id) of the hourly rows of each day before ``until`` (one query, which
    the ``bucket_start`` index answers on its own)."""
    per_hour = (
        CallRollup.objects.filter(bucket_start__lt=until)
        .values("bucket_start")
        .annotate(rows=Count("id"), max_id=Max("id"))
        .order_by()
    )
    days: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for hour in per_hour:
        fingerprint = days[day_start(hour["bucket_start"])]
        fingerprint[0] += hour["rows"]
        fingerprint[1] = max(fingerprint[1], hour["max_id"])
    return {day: (rows, max_id) for day, (rows, max_id) in days.items()}


def _compact_day(day: datetime, fingerprint: tuple[int, int]) -> None:
    """Rebuild one day's compacted rows from its hourly rows (sums in SQL) and store the
    fingerprint they were built from. Histograms are not compacted: the dashboard reads
    them from ``ArmRollup``, whose few rows per hour make that cheap."""
    hourly = CallRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=day + ONE_DAY)
    grouped = (
        hourly.values(*DAY_KEY_FIELDS)
        .annotate(**{f"total_{name}": Sum(name) for name in SUM_FIELDS})
        .order_by()
    )
    rows = [
        CallRollupDaily(
            bucket_start=day,
            **{name: values[name] for name in DAY_KEY_FIELDS},
            **{name: values[f"total_{name}"] or 0 for name in SUM_FIELDS},
        )
        for values in grouped
    ]
    CallRollupDaily.objects.filter(bucket_start=day).delete()
    CallRollupDaily.objects.bulk_create(rows, batch_size=1000)
    CallRollupDay.objects.update_or_create(
        bucket_start=day,
        defaults={"source_rows": fingerprint[0], "source_max_id": fingerprint[1]},
    )


def daily_rollups_sync(*, now: datetime | None = None) -> list[datetime]:
    """Compact every closed day whose hourly rows changed since it was compacted, drop days
    whose hourly rows are gone; returns the days rebuilt. Two queries when nothing changed.

    Concurrent callers may race on the same day; the loser's unique-constraint error is
    caught and that day left to the winner (it is rebuilt again on a later call if the
    winner's data was older).
    """
    until = compacted_until(now)
    fingerprints = hourly_fingerprints(until=until)
    stored = {
        state.bucket_start: (state.source_rows, state.source_max_id)
        for state in CallRollupDay.objects.all()
    }
    stale = sorted(
        day for day, fingerprint in fingerprints.items() if stored.get(day) != fingerprint
    )
    for day in stale:
        try:
            with transaction.atomic():
                _compact_day(day, fingerprints[day])
        except IntegrityError:
            continue
    gone = [day for day in stored if day not in fingerprints]
    if gone:
        with transaction.atomic():
            CallRollupDaily.objects.filter(bucket_start__in=gone).delete()
            CallRollupDay.objects.filter(bucket_start__in=gone).delete()
    return stale
