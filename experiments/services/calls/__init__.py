"""The record of every routed call, and the queue that runs them, one module per job.

Life of a queued call: ``routed_call_enqueue`` (``queueing``) assigns the unit (sticky),
writes a ``queued`` row whose ``request_payload`` holds everything the job needs, and
enqueues the RQ job after the transaction commits (``dispatch``). A worker runs
``experiments.jobs.routed_call_execute(call_id)``, which calls ``routed_call_execute``
(``execution``): it claims the row (``running``, attempts + 1), runs the engine, and
finishes the row with the outcome (``records``).

Exactly once: a row moves to ``success``/``error`` only if it is not finished yet, and the
rollup (``experiments.rollups.rollup_apply``) is applied in that same transaction. A job
that runs twice (RQ retry, a worker killed after the commit, a duplicate enqueue)
therefore records once. A job that keeps failing ends, after its RQ retries, as an
``error`` row with the reason (``routed_call_fail``), never as a silently lost call; a
row whose job vanished is settled by ``routed_calls_reconcile`` (``reconciliation``).

A call answered inline (the SDK, the routing API, ``/v1``) is written by
``routed_call_record`` (``recording``), which also makes its shadow decision
(``shadow``). ``fields`` holds the pure conversions of what a row stores.
"""

from experiments.services.calls.dispatch import (
    JOB_MAX_RETRIES,
    JOB_TIMEOUT_S,
    ROUTING_QUEUE,
    SHADOW_QUEUE,
    QueueUnavailableError,
)
from experiments.services.calls.execution import (
    routed_call_execute,
    routed_call_for_job,
    run_coroutine,
    run_engine,
)
from experiments.services.calls.fields import FINISHED, Kind, Status
from experiments.services.calls.queueing import routed_call_enqueue
from experiments.services.calls.reconciliation import routed_calls_reconcile
from experiments.services.calls.recording import routed_call_record
from experiments.services.calls.records import routed_call_fail
from experiments.services.calls.shadow import routed_call_shadow_enqueue

__all__ = [
    "FINISHED",
    "JOB_MAX_RETRIES",
    "JOB_TIMEOUT_S",
    "ROUTING_QUEUE",
    "SHADOW_QUEUE",
    "Kind",
    "QueueUnavailableError",
    "Status",
    "routed_call_enqueue",
    "routed_call_execute",
    "routed_call_fail",
    "routed_call_for_job",
    "routed_call_record",
    "routed_call_shadow_enqueue",
    "routed_calls_reconcile",
    "run_coroutine",
    "run_engine",
]
