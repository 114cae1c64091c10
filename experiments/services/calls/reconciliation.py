"""Reconciliation: no call may stay ``queued``/``running`` once its job is gone.

A job can vanish without RQ ever failing it: Redis restarted without persistence; a
worker popped the job's id from its queue and lost Redis before reading the job (RQ
pops first, reads second, and retries the whole dequeue: the job stays "queued" in no
queue; the chaos run's "Redis stopped 10 s" left one such row); a worker was killed
mid-job (RQ notices only at its next maintenance, minutes later). Each such call is run
again under a new job when that is safe (recording is exactly-once, so a second run
records nothing twice) and it has runs left, else recorded as an error with the reason.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

import django_rq
from django.utils import timezone
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.worker import WorkerStatus

from experiments.models import RoutedCall
from experiments.services.calls.dispatch import (
    JOB_MAX_RETRIES,
    ROUTING_QUEUE,
    SHADOW_QUEUE,
    enqueue_routed_call,
    job_id_for,
)
from experiments.services.calls.fields import Status
from experiments.services.calls.records import routed_call_fail
from experiments.worker_liveness import WORKER_ALIVE_S, worker_stopped_beating

logger = logging.getLogger(__name__)

#: Runs a call may have had and still be run again: its first run and RQ's retries.
MAX_RUNS = 1 + JOB_MAX_RETRIES


@dataclass(frozen=True)
class JobState:
    """Where a routed call's RQ job stands: ``pending`` (a worker has it or will take it),
    ``failed`` (RQ gave up on it), or ``lost`` (no worker will ever run it)."""

    state: Literal["pending", "failed", "lost"]
    reason: str = ""


def routed_calls_reconcile(*, older_than_s: float = 600.0) -> dict[str, int]:
    """Settle calls whose job is gone: nothing may stay ``queued``/``running`` forever.

    For each unfinished call older than ``older_than_s`` (``job_state``): a job that
    failed for good records the call as an error with RQ's reason (``failed``); a lost
    job is enqueued again under a new id while the call has runs left (``requeued``), else
    the call is recorded as an error (``lost``); a job still waiting for or running on a
    live worker is left to it (``pending``). Returns counts by outcome.
    """
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    counts = {"failed": 0, "lost": 0, "requeued": 0, "pending": 0}
    stale = RoutedCall.objects.filter(
        status__in=(Status.QUEUED, Status.RUNNING), created_at__lt=cutoff
    ).only("id", "job_id", "is_shadow", "attempts", "idempotency_key")
    for call in stale.iterator():
        counts[_settle(call)] += 1
    return counts


def _settle(call: RoutedCall) -> str:
    queue_name = SHADOW_QUEUE if call.is_shadow else ROUTING_QUEUE
    found = job_state(job_id=call.job_id, queue_name=queue_name)
    if found.state == "pending":
        return "pending"
    if found.state == "lost" and call.attempts < MAX_RUNS:
        job_id = _requeue(call, queue_name)
        logger.warning(
            "routed call %s: %s; enqueued again as job %s", call.pk, found.reason, job_id
        )
        return "requeued"
    reason = found.reason
    if found.state == "lost":
        reason += f"; not run again: it already ran {call.attempts} time(s)"
    routed_call_fail(
        call_id=call.pk,
        reason=reason,
        error_type="JobFailed" if found.state == "failed" else "JobLost",
    )
    return found.state


def _requeue(call: RoutedCall, queue_name: str) -> str:
    """Enqueue the call's job again under a new id (an orphaned old job, should RQ ever
    revive it, then records nothing twice), and point the row at it if still unfinished."""
    job_id = f"{job_id_for(call.idempotency_key)}-{uuid.uuid4().hex[:8]}"
    enqueue_routed_call(call_id=call.pk, job_id=job_id, queue_name=queue_name)
    RoutedCall.objects.filter(pk=call.pk, status__in=(Status.QUEUED, Status.RUNNING)).update(
        job_id=job_id
    )
    return job_id


def job_state(*, job_id: str, queue_name: str) -> JobState:
    """Where the RQ job ``job_id`` of a routed call on ``queue_name`` stands."""
    connection = django_rq.get_connection(queue_name)
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return JobState("lost", f"job {job_id} no longer exists in the queue")
    status = job.get_status(refresh=True)
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        latest = job.latest_result()
        detail = ""
        if latest is not None and latest.exc_string:
            detail = latest.exc_string.strip().splitlines()[-1]
        return JobState(
            "failed", f"job {job_id} {status.value}: {detail or 'no reason recorded by RQ'}"
        )
    if status == JobStatus.FINISHED:
        # The job ran but its row is unfinished: it cannot be retried, so say so.
        return JobState("failed", f"job {job_id} finished without recording the call")
    if status == JobStatus.QUEUED:
        return _queued_job_state(job, Queue(queue_name, connection=connection))
    if status == JobStatus.STARTED:
        return _started_job_state(job, connection)
    return JobState("pending")  # scheduled or deferred: RQ will enqueue it


def _queued_job_state(job: Job, queue: Queue) -> JobState:
    """A "queued" job is pending only if it waits in its queue, or in the list a worker
    moves it to while taking it (RQ's own maintenance settles a job stuck there)."""
    if queue.get_job_position(job.id) is not None:
        return JobState("pending")
    if job.id in queue.intermediate_queue.get_job_ids():
        return JobState("pending")
    return JobState(
        "lost",
        f"job {job.id} is queued in no queue (a worker took it and lost Redis before starting it)",
    )


def _started_job_state(job: Job, connection) -> JobState:
    """A "started" job is pending while its worker lives and runs it. RQ leaves the job of
    a SIGKILLed worker "started" until its own maintenance, which may be many minutes
    away; the worker's missing beat says it is gone now. A live worker whose current job
    is another one has left this one behind (its bookkeeping met a Redis outage)."""
    name = job.worker_name
    if worker_stopped_beating(connection, name):
        return JobState(
            "lost",
            f"job {job.id} was running on worker {name}, which stopped (no liveness beat "
            f"for over {WORKER_ALIVE_S:g} s)",
        )
    worker = (
        Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
        if name
        else None
    )
    if worker is None:  # a worker that never beat and left no record: RQ's maintenance
        return JobState("pending")
    current = worker.get_current_job_id()
    if current is not None and current != job.id:
        return JobState(
            "lost", f"job {job.id} was left started by worker {name}, which now runs {current}"
        )
    if worker.get_state() == WorkerStatus.IDLE:
        return JobState("lost", f"job {job.id} was left started by worker {name}, now idle")
    return JobState("pending")
