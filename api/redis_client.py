"""The API's asyncio Redis client, with short timeouts and a circuit breaker.

Redis backs the rate limiter and the job queue. When it is unreachable the API must not
hang or answer 500: a failed call opens the breaker for ``BREAKER_OPEN_S`` seconds, during
which ``redis_available()`` is False without touching the network, so callers fall back
(rate limiter) or answer 503 (queue endpoints) at once.
"""

from __future__ import annotations

import asyncio
import time
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

SOCKET_TIMEOUT_S = 0.5
BREAKER_OPEN_S = 5.0

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_breaker_open_until = 0.0

REDIS_ERRORS: tuple[type[BaseException], ...] = (
    aioredis.RedisError,
    OSError,
    asyncio.TimeoutError,
)


def redis_url() -> str:
    """The URL the RQ queues use (REDIS_URL, or the embedded server's socket)."""
    return settings.RQ_QUEUES["default"]["URL"]


def redis_available() -> bool:
    """False while the breaker is open (Redis failed less than BREAKER_OPEN_S ago)."""
    return time.monotonic() >= _breaker_open_until


def redis_failed() -> None:
    """Open the breaker: skip Redis for a few seconds instead of timing out on every call."""
    global _breaker_open_until
    _breaker_open_until = time.monotonic() + BREAKER_OPEN_S


def redis_breaker_reset() -> None:
    global _breaker_open_until
    _breaker_open_until = 0.0


def get_client() -> aioredis.Redis:
    """One client per event loop and URL (an asyncio connection belongs to its loop)."""
    loop = asyncio.get_running_loop()
    url = redis_url()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    client = per_loop.get(url)
    if client is None:
        client = per_loop[url] = aioredis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            retry_on_timeout=False,
            health_check_interval=0,
        )
    return client


async def redis_ping() -> tuple[bool, str]:
    """(reachable, detail): a PING bounded by the socket timeouts; never raises."""
    try:
        await asyncio.wait_for(get_client().ping(), timeout=SOCKET_TIMEOUT_S * 2)
    except REDIS_ERRORS as err:
        redis_failed()
        return False, f"{type(err).__name__}: {err}"
    redis_breaker_reset()
    return True, "ok"


_sync_clients: dict[str, object] = {}


def get_sync_client():
    """A blocking Redis client (same URL and timeouts), for RQ enqueues and the RQ jobs."""
    url = redis_url()
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients[url] = redis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT_S * 4, socket_connect_timeout=SOCKET_TIMEOUT_S
        )
    return client
