"""Reconciliation: no call may stay ``queued``/``running`` once its job is gone."""

from __future__ import annotations

import django_rq
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from experiments.models import RoutedCall
from experiments.services.calls.dispatch import ROUTING_QUEUE, SHADOW_QUEUE
from experiments.services.calls.fields import Status
from experiments.services.calls.records import routed_call_fail
from experiments.worker_liveness import WORKER_ALIVE_S, worker_stopped_beating


def routed_calls_reconcile(*, older_than_s: float = 600.0) -> dict[str, int]:
    """Settle calls whose job is gone: nothing may stay ``queued``/``running`` forever.

    For each unfinished call older than ``older_than_s``: if its RQ job failed for good
    (or no longer exists), record the call as an error with RQ's reason; if the job is
    still queued, started or scheduled, leave it. Returns counts by outcome.
    """
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    counts = {"failed": 0, "lost": 0, "pending": 0}
    stale = RoutedCall.objects.filter(
        status__in=(Status.QUEUED, Status.RUNNING), created_at__lt=cutoff
    ).only("id", "job_id", "is_shadow")
    for call in stale.iterator():
        state, reason = job_state(
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


def job_state(*, job_id: str, queue_name: str) -> tuple[str, str]:
    """("pending" | "failed" | "lost", reason) of a routed call's RQ job."""
    connection = django_rq.get_connection(queue_name)
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return "lost", f"job {job_id} no longer exists in the queue"
    status = job.get_status(refresh=True)
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        latest = job.latest_result()
        detail = ""
        if latest is not None and latest.exc_string:
            detail = latest.exc_string.strip().splitlines()[-1]
        return "failed", f"job {job_id} {status.value}: {detail or 'no reason recorded by RQ'}"
    if status == JobStatus.FINISHED:
        # The job ran but its row is unfinished: it cannot be retried, so say so.
        return "failed", f"job {job_id} finished without recording the call"
    if status == JobStatus.STARTED and worker_stopped_beating(connection, job.worker_name):
        # RQ leaves a job of a SIGKILLed worker "started" until its own maintenance, which
        # may be many minutes away; the worker's missing beat says it is gone now.
        return "lost", (
            f"job {job_id} was running on worker {job.worker_name}, which stopped "
            f"(no liveness beat for over {WORKER_ALIVE_S:g} s)"
        )
    return "pending", ""
