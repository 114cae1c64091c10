"""Data retention: the only way recorded calls leave the database.

The call record is append-only in the admin (no Delete button); old calls go in bulk,
by age, from the command line (``manage.py routing prune-calls``). The hourly and daily
rollups, which the dashboard and the reports read, are kept: pruning raw calls does not
change any figure already rolled up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.models import RoutedCall

#: Rows deleted per statement, so a large prune never holds one huge transaction.
PRUNE_BATCH = 2_000
#: The youngest cutoff allowed: pruning today's calls is almost certainly a mistake.
PRUNE_MIN_DAYS = 1


@dataclass(frozen=True)
class PruneResult:
    cutoff: datetime
    matched: int
    deleted: int
    dry_run: bool


def _old_calls(cutoff: datetime):
    """Finished calls created before ``cutoff`` (queued or running ones are never pruned)."""
    return RoutedCall.objects.filter(created_at__lt=cutoff).exclude(
        status__in=[RoutedCall.Status.QUEUED, RoutedCall.Status.RUNNING]
    )


def routed_calls_prune(
    *, older_than_days: int, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Delete finished calls older than ``older_than_days`` days (or only count them)."""
    if older_than_days < PRUNE_MIN_DAYS:
        raise ValidationError(
            f"--older-than must be at least {PRUNE_MIN_DAYS} day(s), not {older_than_days}."
        )
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    matched = _old_calls(cutoff).count()
    if dry_run:
        return PruneResult(cutoff=cutoff, matched=matched, deleted=0, dry_run=True)
    deleted = 0
    while True:
        ids = list(_old_calls(cutoff).order_by("id").values_list("id", flat=True)[:PRUNE_BATCH])
        if not ids:
            break
        with transaction.atomic():
            # Unlink pairs first: a kept shadow call must not point at a deleted one.
            RoutedCall.objects.filter(paired_call_id__in=ids).update(paired_call=None)
            deleted += (
                RoutedCall.objects.filter(id__in=ids).delete()[1].get(RoutedCall._meta.label, 0)
            )
    return PruneResult(cutoff=cutoff, matched=matched, deleted=deleted, dry_run=False)
