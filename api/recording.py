"""Recording API calls as RoutedCall rows, inline or after the response is sent.

The OpenAI-compatible endpoint records each call after answering (a background task on
the server's event loop) so the client does not wait for the database; the routing API
records inline because its answer carries the call's id. ``wait_for_background_records``
lets tests, benchmarks and shutdown hooks wait until every scheduled record is written.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_pending: set[asyncio.Task] = set()


def record_call(**fields: Any):
    """Record one call through the experiments service (sync; call it off the event loop)."""
    from experiments.services import routed_call_record

    return routed_call_record(**fields)


def _record_in_worker_thread(fields: dict[str, Any]) -> None:
    # A pool thread, not a request thread: refresh and release its DB connection ourselves.
    close_old_connections()
    try:
        record_call(**fields)
    finally:
        close_old_connections()


async def _record(fields: dict[str, Any]) -> None:
    try:
        await sync_to_async(_record_in_worker_thread, thread_sensitive=False)(fields)
    except Exception:
        logger.exception(
            "Could not record a %s call (idempotency key %s)",
            fields.get("kind"),
            fields.get("idempotency_key"),
        )


def record_call_in_background(**fields: Any) -> None:
    """Schedule ``record_call(**fields)`` without making the current request wait for it."""
    task = asyncio.get_running_loop().create_task(_record(fields))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def wait_for_background_records() -> int:
    """Wait until every scheduled record is written; returns how many were pending."""
    pending = [task for task in _pending if task.get_loop() is asyncio.get_running_loop()]
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)
