"""The record step of ``experiments.call_flow``: write one routed call (and decide its
shadow twin) from a ``CallRecord``'s fields, whose error is a ``RecordedError``."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from experiments.call_flow import CallRecord
from experiments.models import RoutedCall
from experiments.services.calls import routed_call_record
from routing_platform.engine.outcome import RecordedError


def routed_call_write(
    *, error: RecordedError | BaseException | str | None = None, **fields: Any
) -> RoutedCall:
    """``routed_call_record`` for a call's fields (``CallRecord.fields()``), error typed."""
    return routed_call_record(error=error, **fields)


def routed_call_write_record(record: CallRecord) -> RoutedCall:
    """Write ``record`` now (sync: call it off the event loop)."""
    return routed_call_write(**record.fields())


async def routed_call_arecord(record: CallRecord) -> RoutedCall:
    """Write ``record`` now, from the event loop (the routing API: its answer has the id)."""
    return await sync_to_async(routed_call_write_record)(record)
