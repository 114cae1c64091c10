"""Putting a call's job on its RQ queue once the row is committed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import django_rq
from rq import Callback, Retry

from experiments.routes import ArmRoute
from experiments.services.calls.fields import json_safe
from experiments.services.calls.records import routed_call_fail

logger = logging.getLogger(__name__)


ROUTING_QUEUE = "routing"


SHADOW_QUEUE = "shadow"


#: RQ retries of a job that crashed (worker killed, database unavailable, a bug). Provider
#: failures are retried by the engine itself and end as recorded errors, not job failures.
#: Immediate retries: a delayed retry would need a running RQ scheduler.
JOB_MAX_RETRIES = 3


JOB_TIMEOUT_S = 300
#: The RQ job of a routed call and its failure callback (``experiments.jobs``), by the
#: dotted path RQ records (``job.func_name``).
ROUTED_CALL_JOB = "experiments.jobs.routed_call_execute"
ROUTED_CALL_FAILED = "experiments.jobs.routed_call_failed"


class QueueUnavailableError(RuntimeError):
    """The job could not be enqueued (Redis is down); the call was recorded as an error."""


def route_payload(payload: Mapping[str, Any], route: ArmRoute | None) -> dict:
    """The payload with the route the job must follow (strategy and router parameters)."""
    payload = {name: value for name, value in payload.items() if name != "_route"}
    if route is not None:
        payload["_route"] = {
            "experiment_key": route.experiment_key,
            "arm_key": route.arm_key,
            "strategy": route.strategy,
            "router_params": dict(route.router_params),
            "in_experiment": route.in_experiment,
        }
    return json_safe(payload)


def job_id_for(idempotency_key: str) -> str:
    return f"call-{idempotency_key}"


def enqueue_routed_call(*, call_id: int, job_id: str, queue_name: str, pipeline=None):
    """Put the job ``routed_call_execute(call_id)`` on ``queue_name`` with retries and the
    failure callback, both named by their dotted paths (the jobs import the services, not
    the other way round).

    With a Redis ``pipeline`` the job is queued when the caller executes it (several jobs
    become visible to the workers at once)."""
    return django_rq.get_queue(queue_name).enqueue(
        ROUTED_CALL_JOB,
        call_id,
        job_id=job_id,
        job_timeout=JOB_TIMEOUT_S,
        retry=Retry(max=JOB_MAX_RETRIES),
        on_failure=Callback(ROUTED_CALL_FAILED),
        # The outcome lives in the RoutedCall row, not in RQ: no result to store (one write
        # less per job); a failed job is kept a week for its traceback (job_state).
        result_ttl=600,
        failure_ttl=7 * 24 * 3600,
        pipeline=pipeline,
    )


def enqueue_after_commit(call_id: int, job_id: str, queue_name: str) -> None:
    """Put the job on the queue (runs after commit); a dead Redis fails the call loudly."""
    try:
        enqueue_routed_call(call_id=call_id, job_id=job_id, queue_name=queue_name)
    except Exception as err:  # redis.ConnectionError, TimeoutError, ...
        reason = f"queue {queue_name!r} unavailable: {type(err).__name__}: {err}"
        logger.error("routed call %s not enqueued: %s", call_id, reason)
        routed_call_fail(call_id=call_id, reason=reason, error_type="QueueUnavailable")
        raise QueueUnavailableError(
            f"The job queue is unavailable ({type(err).__name__}); the call was recorded as "
            "an error. Check that Redis is running (REDIS_URL) and retry."
        ) from err
