"""The ASGI lifespan of the platform: start-up checks, and a flush of pending records on shutdown.

uvicorn sends ``lifespan.startup`` before it accepts connections and ``lifespan.shutdown``
after SIGTERM (or Ctrl-C) once in-flight requests are done. At start-up the Redis
persistence is read and logged (a warning when acknowledged records could be lost on a
Redis restart, ``api.durability``); at shutdown the in-process record writer is flushed
(``api.recording.record_writer_stop``, which logs the count).
"""

from __future__ import annotations

import asyncio
import logging

from api import durability, recording, redis_client

logger = logging.getLogger(__name__)


def startup_checks() -> None:
    """Read and log Redis persistence; never stops the server from starting."""
    try:
        durability.startup_report(redis_client.get_sync_client())
    except Exception:  # a check must not keep the server down
        logger.warning("Could not read Redis persistence at start-up", exc_info=True)


async def lifespan(scope, receive, send) -> None:
    """The ASGI lifespan protocol: startup checks, then the shutdown flush."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await asyncio.to_thread(startup_checks)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(recording.record_writer_stop)
            await send({"type": "lifespan.shutdown.complete"})
            return
