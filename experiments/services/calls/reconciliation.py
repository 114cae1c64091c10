"""Reconciliation: no call may stay ``queued``/``running`` once its job is gone."""

from __future__ import annotations

from django.utils import timezone

from experiments.models import RoutedCall
from experiments.services.calls.dispatch import ROUTING_QUEUE, SHADOW_QUEUE
from experiments.services.calls.fields import Status
from experiments.services.calls.records import routed_call_fail


def routed_calls_reconcile(*, older_than_s: float = 600.0) -> dict[str, int]:
    """Settle calls whose job is gone: nothing may stay ``queued``/``running`` forever.

    For each unfinished call older than ``older_than_s``: if its RQ job failed for good
    (or no longer exists), record the call as an error with RQ's reason; if the job is
    still queued, started or scheduled, leave it. Returns counts by outcome.
    """
    from experiments import jobs

    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    counts = {"failed": 0, "lost": 0, "pending": 0}
    stale = RoutedCall.objects.filter(
        status__in=(Status.QUEUED, Status.RUNNING), created_at__lt=cutoff
    ).only("id", "job_id", "is_shadow")
    for call in stale.iterator():
        state, reason = jobs.job_state(
            job_id=call.job_id, queue_name=SHADOW_QUEUE if call.is_shadow else ROUTING_QUEUE
        )
        if state == "pending":
            counts["pending"] += 1
            continue
        counts[state] += 1
        routed_call_fail(
            call_id=call.pk,
            reason=reason,
            error_type="JobFailed" if state == "failed" else "JobLost",
        )
    return counts
