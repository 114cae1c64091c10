"""Putting a call's job on its RQ queue once the row is committed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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


def enqueue_after_commit(call_id: int, job_id: str, queue_name: str) -> None:
    """Put the job on the queue (runs after commit); a dead Redis fails the call loudly."""
    from experiments import jobs

    try:
        jobs.enqueue_routed_call(call_id=call_id, job_id=job_id, queue_name=queue_name)
    except Exception as err:  # redis.ConnectionError, TimeoutError, ...
        reason = f"queue {queue_name!r} unavailable: {type(err).__name__}: {err}"
        logger.error("routed call %s not enqueued: %s", call_id, reason)
        routed_call_fail(call_id=call_id, reason=reason, error_type="QueueUnavailable")
        raise QueueUnavailableError(
            f"The job queue is unavailable ({type(err).__name__}); the call was recorded as "
            "an error. Check that Redis is running (REDIS_URL) and retry."
        ) from err
