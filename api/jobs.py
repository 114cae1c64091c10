"""RQ job of the API: write the call records the OpenAI-compatible endpoint left in Redis."""

from __future__ import annotations

import logging
import time

from api import redis_client
from api.dead_letters import dead_letter_entry
from api.recording import FAILED_RECORDS_KEY, RECORDS_KEY, enqueue_drain, record_payload
from experiments.db_retry import TRANSIENT_DB_ERRORS, database_reachable, db_retry

logger = logging.getLogger(__name__)

MAX_RUN_S = 60.0


class DatabaseDownError(RuntimeError):
    """The database is unreachable: the drain stops, keeps every record, and RQ retries it."""


def call_records_drain(max_run_s: float = MAX_RUN_S, connection=None) -> int:
    """Record every pending call, oldest first; returns how many were recorded.

    Each payload is read, recorded, then removed (``LREM`` of that exact payload), so a
    worker killed in between leaves it for the next run, and two drains running at once
    record it once (``routed_call_record`` is idempotent on the call's key). The drain
    never stops on one bad record: a payload that cannot be written while the database
    is up moves to the dead-letter list (``api.dead_letters``) with the reason. Only a
    database outage stops it (after waiting it out with ``db_retry``), leaving the
    records in place for the job's retry or the workers' next periodic drain.
    ``connection``: a sync Redis client (default: the API's).
    """
    connection = connection or redis_client.get_sync_client()
    recorded = 0
    deadline = time.monotonic() + max_run_s
    while time.monotonic() < deadline:
        raw = connection.lindex(RECORDS_KEY, -1)
        if raw is None:
            return recorded
        if _write_or_set_aside(connection, raw):
            recorded += 1
    if connection.llen(RECORDS_KEY):
        enqueue_drain()  # more arrived than one run writes: continue in a fresh job
    return recorded


def _write_or_set_aside(connection, raw: bytes) -> bool:
    """Record ``raw`` and remove it from the list (True), or move it to the dead letters
    (False); raises ``DatabaseDownError`` when the database, not the record, is the problem."""
    try:
        db_retry(lambda: record_payload(raw))
    except TRANSIENT_DB_ERRORS as err:
        if not database_reachable():
            raise DatabaseDownError(f"database unreachable: {err}") from err
        _set_aside(connection, raw, err)  # the database is up: this record is the problem
        return False
    except Exception as err:  # refused data of any kind: never block the records behind it
        _set_aside(connection, raw, err)
        return False
    connection.lrem(RECORDS_KEY, -1, raw)
    return True


def _set_aside(connection, raw: bytes, error: BaseException) -> None:
    logger.error(
        "Call record refused, moved to the dead letters (%s): %s", FAILED_RECORDS_KEY, error
    )
    with connection.pipeline() as pipeline:  # MULTI: moved, never copied or lost
        pipeline.lpush(FAILED_RECORDS_KEY, dead_letter_entry(raw, error))
        pipeline.lrem(RECORDS_KEY, -1, raw)
        pipeline.execute()
