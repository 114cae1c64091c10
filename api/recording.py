"""Recording API calls as RoutedCall rows without making the caller wait for the database.

The routing API records inline (its answer carries the call's id). The OpenAI-compatible
endpoint, whose added latency is budgeted in milliseconds, hands each call's record to
Redis instead: one ``LPUSH`` of a JSON payload onto ``RECORDS_KEY`` (about 0.1 ms, before
the answer is sent, so an answered call is never lost by a server restart), and an RQ job,
``api.jobs.call_records_drain``, writes them with ``experiments.services.routed_call_record``
(idempotent on the call's key, so a payload drained twice is recorded once). The web
process does no ORM work for it: on two cores, recording in-process (several milliseconds
of CPU per call) would cap the endpoint far below its target rate.

When Redis is unreachable the record is written inline instead (slower, still durable).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from api import redis_client
from api.redis_client import REDIS_ERRORS

logger = logging.getLogger(__name__)

RECORDS_KEY = "api:call-records"
FAILED_RECORDS_KEY = "api:call-records:failed"
RECORDS_QUEUE = "default"
# Besides "the list was empty", enqueue a drain job every this many pending records, so a
# drain job lost with its worker never leaves records waiting for long.
DRAIN_TRIGGER_EVERY = 200


def record_call(**fields: Any):
    """Record one call through the experiments service (sync; call it off the event loop)."""
    from experiments.services import routed_call_record

    return routed_call_record(**fields)


def error_payload(error: BaseException | None) -> dict[str, Any] | None:
    """An exception as JSON: its type name, message and partial routing metadata."""
    if error is None:
        return None
    return {
        "type": type(error).__name__,
        "message": str(getattr(error, "message", None) or error),
        "metadata": dict(getattr(error, "metadata", None) or {}),
    }


def error_from_payload(payload: dict[str, Any] | None) -> BaseException | None:
    """Rebuild an exception with the recorded type name, message and metadata."""
    if not payload:
        return None
    error_class = type(str(payload.get("type") or "Error"), (Exception,), {})
    error = error_class(str(payload.get("message") or ""))
    error.metadata = dict(payload.get("metadata") or {})
    return error


# orjson (about ten times faster than json here) with json.dumps(default=str)'s meaning:
# non-string keys and datetimes/dataclasses go the way json's default takes them; what
# orjson refuses (an integer beyond 64 bits) falls back to json itself.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def payload_json(payload: dict[str, Any]) -> bytes:
    """A record's payload as JSON (read back with ``json.loads`` by the drain job)."""
    try:
        return orjson.dumps(payload, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        return json.dumps(payload, default=str).encode()


def _enqueue_drain() -> None:
    import rq

    from api.jobs import call_records_drain

    rq.Queue(RECORDS_QUEUE, connection=redis_client.get_sync_client()).enqueue(
        call_records_drain, job_timeout=300, result_ttl=0, failure_ttl=7 * 24 * 3600
    )


async def record_call_deferred(**fields: Any) -> str:
    """Hand a call's record to Redis for the workers ("queued"), else write it now ("recorded")."""
    if redis_client.redis_available():
        payload = dict(fields)
        payload["error"] = error_payload(fields.get("error"))
        try:
            pending = await redis_client.get_client().lpush(RECORDS_KEY, payload_json(payload))
        except REDIS_ERRORS:
            redis_client.redis_failed()
        else:
            if pending == 1 or pending % DRAIN_TRIGGER_EVERY == 0:
                try:
                    _enqueue_drain()
                except REDIS_ERRORS:
                    # The payload is safe in Redis; the next trigger enqueues a drain job.
                    logger.warning("Could not enqueue the call-records drain job", exc_info=True)
            return "queued"
    await sync_to_async(_record_in_thread)(fields)
    return "recorded"


def _record_in_thread(fields: dict[str, Any]) -> None:
    # The OpenAI paths skip Django's per-request connection signals (api.asgi), so the
    # thread that runs this refreshes its own database connection.
    close_old_connections()
    try:
        record_call(**fields)
    finally:
        close_old_connections()
