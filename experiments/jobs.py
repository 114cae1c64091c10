"""RQ jobs: each loads its row by id and calls the service of the same name.

Jobs are enqueued only after the transaction that wrote their row commits
(``transaction.on_commit`` in ``experiments.services.calls``), with RQ retries for jobs
that crash; ``routed_call_failed`` is the failure callback that records the error row once
the retries are used up, so a call never silently disappears.
"""

from __future__ import annotations

import gc
import logging
import time

from rq.utils import now as rq_now
from rq.worker import SimpleWorker

from experiments.services.quality import quality_on_call_finished

logger = logging.getLogger(__name__)


def routed_call_execute(call_id: int, judge: str = "queue") -> str:
    """Run routed call ``call_id`` through the engine and record it (once); its status.
    ``judge``: how a completed shadow pair's judge runs (``quality_on_call_finished``)."""
    from experiments import services

    call = services.routed_call_for_job(call_id=call_id)
    if call is None:
        # The row was deleted (e.g. a test database reset): nothing to run or record.
        logger.warning("routed call %s no longer exists; job skipped", call_id)
        return "missing"
    call = services.routed_call_execute(call=call)
    quality_on_call_finished(call=call, judge=judge)  # agreement and judge of a complete pair
    return call.status


#: The import path RQ records for routed-call jobs (``job.func_name``).
ROUTED_CALL_JOB = f"{__name__}.routed_call_execute"


def routed_call_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: record the call as an error once no retry is left.

    RQ calls it on every failure, before it schedules a retry, and for jobs found
    abandoned by a killed worker; while ``job.retries_left`` is positive RQ will run the
    job again, so nothing is recorded yet.
    """
    from experiments import services

    if job.retries_left:
        return
    call_id = job.args[0] if job.args else job.kwargs.get("call_id")
    name = getattr(exc_type, "__name__", str(exc_type))
    detail = str(exc_value) or (
        "the worker died while running it" if name == "AbandonedJobError" else "no message"
    )
    reason = f"job {job.id} failed and has no retry left: {name}: {detail}"
    services.routed_call_fail(call_id=call_id, reason=reason, error_type="JobFailed")


def enqueue_routed_call(*, call_id: int, job_id: str, queue_name: str, pipeline=None):
    """Put ``routed_call_execute(call_id)`` on ``queue_name`` with retries and the callback.

    With a Redis ``pipeline`` the job is queued when the caller executes it (several jobs
    become visible to the workers at once)."""
    import django_rq
    from rq import Callback, Retry

    from experiments.services.calls import JOB_MAX_RETRIES, JOB_TIMEOUT_S

    queue = django_rq.get_queue(queue_name)
    return queue.enqueue(
        routed_call_execute,
        call_id,
        job_id=job_id,
        job_timeout=JOB_TIMEOUT_S,
        retry=Retry(max=JOB_MAX_RETRIES),
        on_failure=Callback(routed_call_failed),
        # The outcome lives in the RoutedCall row, not in RQ: no result to store (one write
        # less per job); a failed job is kept a week for its traceback (job_state).
        result_ttl=600,
        failure_ttl=7 * 24 * 3600,
        pipeline=pipeline,
    )


def job_state(*, job_id: str, queue_name: str) -> tuple[str, str]:
    """("pending" | "failed" | "lost", reason) of a routed call's RQ job."""
    import django_rq
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

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
    return "pending", ""


def _check_db_connections() -> None:
    """Django's ``close_old_connections`` for a long-lived worker: connections that an error
    left unusable are closed, and so are connections past ``CONN_MAX_AGE`` when it is set;
    but ``CONN_MAX_AGE = 0`` (Django's default, "a connection per request"; the SQLite
    setting here) keeps a healthy connection across jobs instead of reconnecting (and
    re-running the SQLite pragmas) for every job."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.settings_dict.get("CONN_MAX_AGE") == 0:
            conn.close_at = None  # no age limit; errors still close it below
        conn.close_if_unusable_or_obsolete()


class RoutingWorker(SimpleWorker):
    """The platform's RQ worker (``settings.RQ["WORKER_CLASS"]``): runs each job in the
    worker process instead of a fork per job.

    A routed call is mostly waiting on its upstream; forking the Django process and
    re-importing the engine for every job would cost more than the call itself (see
    ``benchmarks/bench_rq_throughput.py``). Database connections are checked before and
    after each job, as Django does around a request, so a long-lived worker never reuses
    a broken connection (a healthy one is kept across jobs: ``_check_db_connections``). A
    worker killed mid-job leaves the job in RQ's started registry; RQ's registry cleanup
    retries it, and the call's idempotency key records it once.

    RQ's bookkeeping costs about 18 Redis round trips per job; on a busy machine each one
    waits for the Redis process to be scheduled, and together they cost more than the
    job's own work. Three of RQ's methods are trimmed, without changing what is stored
    for a job or how a lost job is found: the worker's liveness heartbeat (``hset`` +
    ``expire`` of its key) is one pipelined round trip, and is skipped while the key
    still has at least ``worker_ttl`` seconds to live (longer than RQ's blocking dequeue,
    so the key never expires under a live worker); an unchanged worker state is not
    written again; and the job hash's ``last_heartbeat`` is not rewritten just after the
    job ran (RQ deletes or expires that hash in the next step; abandoned jobs are found
    by the execution's entry in the started registry, which is kept as RQ keeps it).
    """

    def work(self, *args, **kwargs):
        # The jobs' imports happen now rather than in the first job; then everything
        # imported (Django, the engine, scipy) lives as long as the worker: freezing it
        # keeps the garbage collector from rescanning it after every few jobs.
        import routing_platform.runtime  # noqa: F401
        from experiments import services  # noqa: F401

        gc.freeze()
        return super().work(*args, **kwargs)

    def execute_job(self, job, queue):
        _check_db_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            _check_db_connections()

    def heartbeat(self, timeout=None, pipeline=None):
        ttl = timeout or self.worker_ttl + 60
        key_expires_at = getattr(self, "_key_expires_at", None)
        if (
            pipeline is None
            and key_expires_at is not None
            and key_expires_at - time.monotonic() >= self.worker_ttl
        ):
            return  # the key outlives the longest wait before the next heartbeat
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
        else:
            with self.connection.pipeline(transaction=False) as batch:
                super().heartbeat(timeout, pipeline=batch)
                batch.execute()
        # A pipeline passed in runs in the same step of RQ (its expiry counts from now).
        self._key_expires_at = time.monotonic() + ttl

    def set_state(self, state, pipeline=None):
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline=pipeline)

    def handle_job_success(self, job, queue, started_job_registry):
        """RQ's success bookkeeping in one MULTI/EXEC, for routed-call jobs.

        RQ first WATCHes the job's dependents key and reads it (two round trips) so that a
        job made to depend on this one meanwhile is enqueued; nothing ever depends on a
        routed-call job (``enqueue_routed_call`` is the only producer), so those two
        steps are skipped for them. The rest is RQ's own sequence (counters, result,
        job cleanup, execution cleanup); any other job gets RQ's method unchanged.
        """
        if job.func_name != ROUTED_CALL_JOB:
            return super().handle_job_success(job, queue, started_job_registry)
        with self.connection.pipeline() as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            result_ttl = job.get_result_ttl(self.default_result_ttl)
            if result_ttl != 0:
                execution = self.execution
                job._handle_success(
                    result_ttl,
                    pipeline=pipeline,
                    worker_name=self.name,
                    execution_id=execution.id if execution else None,
                    execution_started_at=execution.created_at if execution else None,
                    execution_ended_at=job.ended_at,
                )
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipeline)
            pipeline.execute()
        self.log.info(
            "Successfully completed job %s in %ss on worker %s",
            job.id,
            job.ended_at - job.started_at,
            self.name,
        )
        return None

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        job.ended_at = rq_now()
        job.last_heartbeat = job.ended_at
