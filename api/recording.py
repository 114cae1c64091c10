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
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import rq
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from api import durability, redis_client
from api.errors import ServiceUnavailable
from api.record_writer import RecordWriter, jsonl_dead_letter
from api.redis_client import REDIS_ERRORS
from experiments.call_flow import CallRecord
from experiments.services.routed_calls import routed_call_write
from routing_platform.engine.outcome import RecordedError

logger = logging.getLogger(__name__)

RECORDS_KEY = "api:call-records"
#: The dead-letter list: records that could not be written (``api.dead_letters``).
FAILED_RECORDS_KEY = "api:call-records:failed"
RECORDS_QUEUE = "default"
# Besides "the list was empty", enqueue a drain job every this many pending records; the
# workers' timer (settings.RQ_PERIODIC_JOBS) drains every few seconds regardless.
DRAIN_TRIGGER_EVERY = 200
#: When the payload was handed to Redis (epoch seconds); not a field of the record.
QUEUED_AT_FIELD = "_queued_at"


@dataclass(frozen=True)
class RecordsBacklog:
    """The records waiting in Redis: how many, the oldest one's age, and the dead letters."""

    pending: int
    oldest_age_s: float | None
    dead_letters: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def records_backlog(connection) -> RecordsBacklog:
    """The backlog in the Redis of ``connection`` (a sync client); raises Redis errors."""
    with connection.pipeline(transaction=False) as pipeline:
        pipeline.llen(RECORDS_KEY)
        pipeline.lindex(RECORDS_KEY, -1)
        pipeline.llen(FAILED_RECORDS_KEY)
        pending, oldest, dead = pipeline.execute()
    return RecordsBacklog(pending=int(pending), oldest_age_s=_age_s(oldest), dead_letters=int(dead))


def _age_s(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        queued_at = float(json.loads(raw).get(QUEUED_AT_FIELD))
    except (ValueError, TypeError, AttributeError):
        return None  # a record from before the field, or a malformed one
    return round(max(0.0, time.time() - queued_at), 3)


def record_payload(raw: bytes | str) -> None:
    """Write one record payload (JSON, as ``record_call_deferred`` left it) through the
    experiments service; raises whatever refuses it (bad JSON, a field, the database)."""
    fields = json.loads(raw)
    if not isinstance(fields, dict):
        raise TypeError("a call record payload must be a JSON object")
    fields.pop(QUEUED_AT_FIELD, None)
    fields["error"] = error_from_payload(fields.get("error"))
    record_call(**fields)


def record_call(**fields: Any):
    """Record one call through the experiments service (sync; call it off the event loop)."""
    return routed_call_write(**fields)


def error_payload(error: RecordedError | BaseException | None) -> dict[str, Any] | None:
    """A call's error as JSON: its kind (type name), message, retryable, status and
    partial routing metadata (``RecordedError.as_payload``)."""
    if error is None:
        return None
    if not isinstance(error, RecordedError):
        error = RecordedError.from_exception(error)
    return error.as_payload()


def error_from_payload(payload: dict[str, Any] | None) -> RecordedError | None:
    """The recorded error of ``error_payload``'s JSON."""
    return RecordedError.from_payload(payload) if payload else None


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


def enqueue_drain() -> None:
    """Enqueue a drain job (``api.jobs.call_records_drain``), retried if it fails."""
    rq.Queue(RECORDS_QUEUE, connection=redis_client.get_sync_client()).enqueue(
        "api.jobs.call_records_drain",
        job_timeout=300,
        retry=rq.Retry(max=3),
        result_ttl=0,
        failure_ttl=7 * 24 * 3600,
    )


def payload_from_fields(fields: dict[str, Any]) -> dict[str, Any]:
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


async def call_record_deferred(record: CallRecord) -> str:
    """The record step of ``/v1`` (``experiments.call_flow``): ``record_call_deferred``."""
    return await record_call_deferred(**record.fields())


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
        payload = payload_from_fields(fields)
        payload[QUEUED_AT_FIELD] = time.time()
        pending = await redis_client.get_client().lpush(RECORDS_KEY, payload_json(payload))
    except REDIS_ERRORS:
        redis_client.redis_failed()
        return False
    if pending == 1 or pending % DRAIN_TRIGGER_EVERY == 0:
        try:
            enqueue_drain()
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
    return {"reason": item["reason"], "payload": payload_from_fields(item["payload"])}


def record_writer_stop() -> None:
    """Flush and stop the writer (ASGI lifespan shutdown); logs how many it wrote. The next
    record starts a fresh writer."""
    global _writer
    if _writer is not None:
        _writer.stop()
        atexit.unregister(_writer.stop)
        _writer = None
