"""Recording API calls as RoutedCall rows without making the caller wait for the database.

The routing API records inline (its answer carries the call's id). The OpenAI-compatible
endpoint, whose added latency is budgeted in milliseconds, hands each call's record to
Redis instead: one ``LPUSH`` of a JSON payload onto ``RECORDS_KEY`` (about 0.1 ms, before
the answer is sent, so an answered call is never lost by a server restart), and an RQ job,
``api.jobs.call_records_drain``, writes them with ``experiments.services.routed_call_record``
(idempotent on the call's key, so a payload drained twice is recorded once). The web
process does no ORM work for it: on two cores, recording in-process (several milliseconds
of CPU per call) would cap the endpoint far below its target rate.

Redis keeps those records only as well as its persistence does (``api.durability``): with
``ROUTER_REQUIRE_DURABLE_REDIS=sync`` a Redis that is not durable gets none (each record is
written to the database before the answer), with ``refuse`` the call is answered 503
before the upstream is called.

When Redis is unreachable the record goes to a bounded in-process writer
(``api.record_writer``): the answer goes out first, one thread writes the record, and
shutdown flushes it. A full queue, or the ``sync`` / ``refuse`` modes, write inline instead.
"""

from __future__ import annotations

import atexit
import json
import logging
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from api import durability, redis_client
from api.errors import ServiceUnavailable
from api.record_writer import RecordWriter, jsonl_dead_letter
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


def record_payload(fields: dict[str, Any]) -> dict[str, Any]:
    """A record's fields as JSON-able values (the error as ``error_payload``)."""
    payload = dict(fields)
    payload["error"] = error_payload(fields.get("error"))
    return payload


REFUSED_NOT_DURABLE = (
    "Call records cannot be kept safely now: Redis does not persist its data and this server "
    "requires it (ROUTER_REQUIRE_DURABLE_REDIS=refuse). Retry later; the operator should "
    "turn on appendonly in Redis."
)


async def ensure_recordable() -> None:
    """Raise 503 before any upstream call when records would go to a Redis that is not
    durable and ``ROUTER_REQUIRE_DURABLE_REDIS=refuse``."""
    if durability.required_mode() != durability.MODE_REFUSE or not redis_client.redis_available():
        return
    if await durability.current_policy() == durability.POLICY_REFUSE:
        raise ServiceUnavailable(
            REFUSED_NOT_DURABLE,
            headers={"Retry-After": str(durability.REFUSE_RETRY_AFTER_S)},
        )


async def record_call_deferred(**fields: Any) -> str:
    """Hand a call's record to Redis for the workers ("queued"), to the in-process writer
    ("deferred"), or write it now ("recorded")."""
    if redis_client.redis_available():
        if await durability.current_policy() == durability.POLICY_QUEUE:
            if await _push_to_redis(fields):
                return "queued"
        else:  # sync mode, or refuse mode whose refusal came before the upstream call
            await sync_to_async(_record_in_thread)(fields)
            return "recorded"
    if durability.required_mode() == durability.MODE_WARN and record_writer().submit(fields):
        return "deferred"
    await sync_to_async(_record_in_thread)(fields)
    return "recorded"


async def _push_to_redis(fields: dict[str, Any]) -> bool:
    try:
        pending = await redis_client.get_client().lpush(
            RECORDS_KEY, payload_json(record_payload(fields))
        )
    except REDIS_ERRORS:
        redis_client.redis_failed()
        return False
    if pending == 1 or pending % DRAIN_TRIGGER_EVERY == 0:
        try:
            _enqueue_drain()
        except REDIS_ERRORS:
            # The payload is safe in Redis; the next trigger enqueues a drain job.
            logger.warning("Could not enqueue the call-records drain job", exc_info=True)
    return True


def _record_in_thread(fields: dict[str, Any]) -> None:
    # The OpenAI paths skip Django's per-request connection signals (api.asgi), so the
    # thread that runs this refreshes its own database connection.
    close_old_connections()
    try:
        record_call(**fields)
    finally:
        close_old_connections()


def _dead_letter_path():
    from django.conf import settings

    return settings.DATA_DIR / "call-records-unwritten.jsonl"


_writer: RecordWriter | None = None


def record_writer() -> RecordWriter:
    """This process's in-process writer (started on first use, flushed at exit)."""
    global _writer
    if _writer is None:
        _writer = RecordWriter(
            lambda fields: record_call(**fields),
            dead_letter=jsonl_dead_letter(
                _dead_letter_path(), lambda item: payload_json(record_payload_line(item))
            ),
        )
        # Servers without an ASGI lifespan (or a plain interpreter exit) still flush it.
        atexit.register(_writer.stop)
    return _writer


def record_payload_line(item: dict[str, Any]) -> dict[str, Any]:
    """A dead-letter line: the reason and the record in the drain's payload format."""
    return {"reason": item["reason"], "payload": record_payload(item["payload"])}


def record_writer_stop() -> None:
    """Flush and stop the writer (ASGI lifespan shutdown); logs how many it wrote. The next
    record starts a fresh writer."""
    global _writer
    if _writer is not None:
        _writer.stop()
        atexit.unregister(_writer.stop)
        _writer = None
