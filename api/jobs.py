"""RQ job of the API: write the call records the OpenAI-compatible endpoint left in Redis."""

from __future__ import annotations

import json
import logging
import time

from django.core.exceptions import ValidationError

from api import redis_client
from api.recording import (
    FAILED_RECORDS_KEY,
    RECORDS_KEY,
    error_from_payload,
    record_call,
)

logger = logging.getLogger(__name__)

MAX_RUN_S = 60.0


def call_records_drain(max_run_s: float = MAX_RUN_S) -> int:
    """Record every pending call, oldest first; returns how many were recorded.

    Each payload is read, recorded, then removed (``LREM`` of that exact payload), so a
    worker killed in between leaves it for the next run, and two drains running at once
    record it once (``routed_call_record`` is idempotent on the call's key). A payload the
    service refuses as invalid moves to ``FAILED_RECORDS_KEY`` instead of blocking the rest.
    Database errors propagate, so RQ retries the job.
    """
    connection = redis_client.get_sync_client()
    recorded = 0
    deadline = time.monotonic() + max_run_s
    while time.monotonic() < deadline:
        raw = connection.lindex(RECORDS_KEY, -1)
        if raw is None:
            return recorded
        try:
            fields = json.loads(raw)
            fields["error"] = error_from_payload(fields.get("error"))
            record_call(**fields)
        except (ValueError, TypeError, ValidationError) as err:
            logger.error("Call record refused, kept in %s: %s", FAILED_RECORDS_KEY, err)
            connection.lpush(FAILED_RECORDS_KEY, raw)
        else:
            recorded += 1
        connection.lrem(RECORDS_KEY, -1, raw)
    if connection.llen(RECORDS_KEY):
        from api.recording import _enqueue_drain

        _enqueue_drain()  # more arrived than one run writes: continue in a fresh job
    return recorded
