"""RQ jobs: each loads its row by id and calls the service of the same name.

Jobs are enqueued only after the transaction that wrote their row commits
(``transaction.on_commit`` in ``experiments.services.calls``), with RQ retries for jobs
that crash; ``routed_call_failed`` is the failure callback that records the error row once
the retries are used up, so a call never silently disappears. Database writes wait out an
outage with backoff (``experiments.db_retry``); a failure that still cannot be written is
kept in Redis and settled by ``routed_calls_settle``.

``RoutingWorker`` is the worker class: besides running jobs it beats (``live_worker_count``
counts workers by that beat), enqueues ``settings.RQ_PERIODIC_JOBS`` from its own timer
(``WorkerUpkeep``), and waits for Redis through an outage instead of quitting.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import threading
import time

import django_rq
import redis
from django.conf import settings
from django.db import connections
from rq import Queue, Retry
from rq.exceptions import StopRequested
from rq.job import JobStatus
from rq.utils import now as rq_now
from rq.worker import SimpleWorker

from experiments import services
from experiments.db_retry import TRANSIENT_DB_ERRORS, db_retry
from experiments.services.calls.dispatch import ROUTED_CALL_JOB
from experiments.services.quality import quality_on_call_finished

# The liveness names are re-exported: /health and `routing status` read them here.
from experiments.worker_liveness import WORKER_ALIVE_S as WORKER_ALIVE_S
from experiments.worker_liveness import WORKER_BEAT_S, WORKERS_ALIVE_KEY
from experiments.worker_liveness import live_worker_count as live_worker_count

logger = logging.getLogger(__name__)

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
#: Calls whose failure could not be recorded (database down): settled by a periodic job.
UNSETTLED_CALLS_KEY = "routing:calls:unsettled"
#: The periodic reconcile looks only at calls at least this old.
RECONCILE_AFTER_S = 600.0
#: A failure callback waits out a database outage this much longer than the job did.
FAILURE_DB_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def routed_call_execute(call_id: int, judge: str = "queue") -> str:
    """Run routed call ``call_id`` through the engine and record it (once); its status.
    ``judge``: how a completed shadow pair's judge runs (``quality_on_call_finished``)."""
    call = db_retry(lambda: services.routed_call_for_job(call_id=call_id))
    if call is None:
        # The row was deleted (e.g. a test database reset): nothing to run or record.
        logger.warning("routed call %s no longer exists; job skipped", call_id)
        return "missing"
    call = services.routed_call_execute(call=call)
    quality_on_call_finished(call=call, judge=judge)  # agreement and judge of a complete pair
    return call.status


def routed_call_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: record the call as an error once no retry is left.

    RQ calls it on every failure, before it schedules a retry, and for jobs found
    abandoned by a killed worker; while ``job.retries_left`` is positive RQ will run the
    job again, so nothing is recorded yet.
    """
    if job.retries_left:
        return
    call_id = job.args[0] if job.args else job.kwargs.get("call_id")
    name = getattr(exc_type, "__name__", str(exc_type))
    detail = str(exc_value) or (
        "the worker died while running it" if name == "AbandonedJobError" else "no message"
    )
    reason = f"job {job.id} failed and has no retry left: {name}: {detail}"
    try:
        db_retry(
            lambda: services.routed_call_fail(
                call_id=call_id, reason=reason, error_type="JobFailed"
            ),
            delays_s=FAILURE_DB_RETRY_DELAYS_S,
        )
    except TRANSIENT_DB_ERRORS:
        # The database is still down: leave the failure for ``routed_calls_settle`` (run
        # periodically by every RoutingWorker) instead of a `running` row nobody revisits.
        logger.error("routed call %s: failure not recorded yet (database down)", call_id)
        connection.rpush(UNSETTLED_CALLS_KEY, json.dumps({"call_id": call_id, "reason": reason}))


def routed_calls_settle() -> int:
    """Record the failures that ``routed_call_failed`` could not write (periodic job); a
    failure that still cannot be written stays in the list for the next run."""
    connection = django_rq.get_connection("default")
    settled = 0
    while (raw := connection.lindex(UNSETTLED_CALLS_KEY, 0)) is not None:
        entry = json.loads(raw)
        db_retry(
            lambda entry=entry: services.routed_call_fail(
                call_id=entry["call_id"], reason=entry["reason"], error_type="JobFailed"
            )
        )
        connection.lrem(UNSETTLED_CALLS_KEY, 1, raw)
        settled += 1
    return settled


def routed_calls_reconcile() -> dict[str, int]:
    """Settle the calls whose job is gone (periodic job; ``routing reconcile`` does the same
    on demand): calls older than ``RECONCILE_AFTER_S`` only, so a call that simply waits
    for a busy worker is left to it."""
    return db_retry(lambda: services.routed_calls_reconcile(older_than_s=RECONCILE_AFTER_S))


def _check_db_connections() -> None:
    """Django's ``close_old_connections`` for a long-lived worker: connections that an error
    left unusable are closed, and so are connections past ``CONN_MAX_AGE`` when it is set;
    but ``CONN_MAX_AGE = 0`` (Django's default, "a connection per request"; the SQLite
    setting here) keeps a healthy connection across jobs instead of reconnecting (and
    re-running the SQLite pragmas) for every job."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.settings_dict.get("CONN_MAX_AGE") == 0:
            conn.close_at = None  # no age limit; errors still close it below
        conn.close_if_unusable_or_obsolete()


PERIODIC_QUEUE = "default"
_WAITING_OR_RUNNING = (
    JobStatus.QUEUED,
    JobStatus.STARTED,
    JobStatus.SCHEDULED,
    JobStatus.DEFERRED,
)


def periodic_enqueue(connection, func_path: str, every_s: float) -> bool:
    """Enqueue job ``func_path`` on the maintenance queue at most once per ``every_s``
    seconds across all workers (a Redis ``SET NX PX`` slot), and not while its previous run
    still waits or runs; True if enqueued. Immediate retries: the jobs wait out database
    outages themselves (``db_retry``), and the next period runs them again anyway."""
    slot = f"routing:periodic:{func_path}"
    if not connection.set(slot, "1", nx=True, px=max(1, int(every_s * 1000))):
        return False
    queue = Queue(PERIODIC_QUEUE, connection=connection)
    job_id = "periodic-" + func_path.replace(".", "-")
    previous = queue.fetch_job(job_id)
    if previous is not None and previous.get_status() in _WAITING_OR_RUNNING:
        return False
    queue.enqueue(
        func_path,
        job_id=job_id,
        retry=Retry(max=3),
        job_timeout=300,
        result_ttl=0,
        failure_ttl=24 * 3600,
    )
    return True


class WorkerUpkeep(threading.Thread):
    """A worker's own timer (no RQ scheduler needed): every ``WORKER_BEAT_S`` it records the
    worker as alive (``WORKERS_ALIVE_KEY``) and enqueues the due jobs of
    ``settings.RQ_PERIODIC_JOBS`` (the call-records drain, settling failures). It runs
    beside the jobs, so a long job neither hides the worker nor delays the drain, and it
    outlives Redis outages (each beat tries again)."""

    def __init__(self, *, connection, worker_name: str, periodic: bool = True) -> None:
        super().__init__(name=f"upkeep-{worker_name}", daemon=True)
        self.connection, self.worker_name = connection, worker_name
        self.periodic = periodic  # only workers that serve PERIODIC_QUEUE enqueue on it
        self.stopped = threading.Event()
        self.redis_down = False

    def run(self) -> None:
        self.beat()
        while not self.stopped.wait(WORKER_BEAT_S):
            self.beat()

    def beat(self) -> None:
        try:
            now = time.time()
            with self.connection.pipeline(transaction=False) as pipeline:
                pipeline.zadd(WORKERS_ALIVE_KEY, {self.worker_name: now})
                pipeline.zremrangebyscore(WORKERS_ALIVE_KEY, "-inf", now - 3600)
                pipeline.execute()
            for func_path, every_s in settings.RQ_PERIODIC_JOBS.items() if self.periodic else ():
                periodic_enqueue(self.connection, func_path, every_s)
        except REDIS_ERRORS as err:
            if not self.redis_down:
                logger.warning("worker upkeep: Redis unreachable (%s); retrying", err)
            self.redis_down = True
        except Exception:  # the timer must outlive any one failure
            logger.exception("worker upkeep failed; retrying at the next beat")
        else:
            self.redis_down = False

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=WORKER_BEAT_S * 2)
        with contextlib.suppress(*REDIS_ERRORS):  # else its beat ages out instead
            self.connection.zrem(WORKERS_ALIVE_KEY, self.worker_name)


#: Jobs that are safe to run again after an interruption (they record exactly once).
_RERUNNABLE_JOBS = frozenset({ROUTED_CALL_JOB, "api.jobs.call_records_drain"})


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
    job's own work. Three of RQ's public methods are trimmed, without changing what is
    stored for a job or how a lost job is found: the worker's liveness heartbeat (``hset`` +
    ``expire`` of its key) is one pipelined round trip, and is skipped while the key
    still has at least ``worker_ttl`` seconds to live (longer than RQ's blocking dequeue,
    so the key never expires under a live worker); an unchanged worker state is not
    written again; and the job hash's ``last_heartbeat`` is not rewritten just after the
    job ran (RQ deletes or expires that hash in the next step; abandoned jobs are found
    by the execution's entry in the started registry, which is kept as RQ keeps it).
    A job's success is recorded by RQ's own ``handle_job_success``: only public RQ API
    here.
    """

    def work(self, *args, **kwargs):
        # The jobs' imports (Django, the engine, scipy: imported with this module) live as
        # long as the worker: freezing them keeps the garbage collector from rescanning
        # them after every few jobs.
        gc.freeze()
        self.shutdown_asked = False
        self.upkeep = WorkerUpkeep(
            connection=self.connection,
            worker_name=self.name,
            periodic=PERIODIC_QUEUE in self.queue_names(),
        )
        self.upkeep.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            self.upkeep.stop()

    # --- Surviving a Redis outage: wait for Redis instead of "unhandled exception, quitting"

    def handle_warm_shutdown_request(self):
        self.shutdown_asked = True  # RQ's hook on SIGTERM / SIGINT; ends a wait for Redis
        super().handle_warm_shutdown_request()

    def wait_for_redis(self, error: Exception) -> None:
        """Block until Redis answers again (growing pauses, up to 10 s), then re-register
        the worker if Redis lost its key (a restart without persistence). A shutdown
        request ends the wait."""
        self.log.warning("Worker %s: Redis unreachable (%s); waiting for it", self.name, error)
        pause = 0.5
        while True:
            if getattr(self, "shutdown_asked", False):
                raise StopRequested()
            time.sleep(pause)
            try:
                self.connection.ping()
                if not self.connection.exists(self.key):
                    self.register_birth()
            except REDIS_ERRORS:
                pause = min(pause * 2, 10.0)
                continue
            self.log.warning("Worker %s: Redis is back; resuming", self.name)
            return

    def until_redis_answers(self, method, *args, **kwargs):
        """``method(*args, **kwargs)``, called again after each Redis outage it meets."""
        while True:
            try:
                return method(*args, **kwargs)
            except REDIS_ERRORS as err:
                self.wait_for_redis(err)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        return self.until_redis_answers(
            super().dequeue_job_and_maintain_ttl, timeout, max_idle_time
        )

    def check_for_suspension(self, burst):
        return self.until_redis_answers(super().check_for_suspension, burst)

    def run_maintenance_tasks(self):
        return self.until_redis_answers(super().run_maintenance_tasks)

    def execute_job(self, job, queue):
        _check_db_connections()
        try:
            return super().execute_job(job, queue)
        except REDIS_ERRORS as err:
            # RQ's bookkeeping around the job failed: its outcome in Redis is unknown. Once
            # Redis is back, a job that records exactly once runs again at the front of
            # its queue; any other is left to RQ's abandoned-job cleanup.
            self.wait_for_redis(err)
            if job.func_name in _RERUNNABLE_JOBS:
                self.until_redis_answers(queue.enqueue_job, job, at_front=True)
            return None
        finally:
            _check_db_connections()

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:
            return self.beat_once(timeout, pipeline)
        return self.until_redis_answers(self.beat_once, timeout, None)

    def beat_once(self, timeout=None, pipeline=None):
        """RQ's heartbeat, trimmed (see the class docstring)."""
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
        if pipeline is None and state == self.get_state():
            return
        super().set_state(state, pipeline=pipeline)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        job.ended_at = rq_now()
        job.last_heartbeat = job.ended_at
