"""Retrying database work through a short outage (a restart, a failover, SQLite's lock).

A job that meets ``OperationalError`` / ``InterfaceError`` closes its connections and tries
again after a growing pause: ``DB_RETRY_DELAYS_S`` spans about 16 s, longer than a database
restart, so a call already paid for upstream is recorded instead of failing in 100 ms.
Other database errors (bad data, a constraint) are not transient and propagate at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
#: Pauses between attempts (seconds); len + 1 attempts in all.
DB_RETRY_DELAYS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def connections_reset() -> None:
    """Close every open connection outside a transaction: the next query reconnects."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def db_retry(
    operation: Callable[[], T],
    *,
    delays_s: tuple[float, ...] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """``operation()``, tried again after each pause of ``delays_s`` while it raises a
    transient database error; the last error propagates. Never inside a transaction (a
    broken transaction cannot be retried from within)."""
    pauses = DB_RETRY_DELAYS_S if delays_s is None else delays_s
    for attempt, pause in enumerate((*pauses, None), start=1):
        try:
            return operation()
        except TRANSIENT_DB_ERRORS as err:
            if pause is None or any(
                c.in_atomic_block for c in connections.all(initialized_only=True)
            ):
                raise
            logger.warning(
                "database unavailable (%s: %s); attempt %d, retrying in %.2f s",
                type(err).__name__,
                err,
                attempt,
                pause,
            )
            connections_reset()
            (sleep or time.sleep)(pause)
    raise AssertionError("unreachable")


def database_reachable() -> bool:
    """True when a fresh ``SELECT 1`` on the default database succeeds."""
    connections_reset()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except TRANSIENT_DB_ERRORS:
        return False
    return True
