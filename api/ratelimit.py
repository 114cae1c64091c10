"""Per-key rate limits: a fixed one-minute window counted in Redis, else in Django's cache.

Redis makes the limit hold across server processes; when Redis is unreachable the count
falls back to the (per-process) Django cache rather than failing the request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from api import redis_client
from api.redis_client import REDIS_ERRORS

WINDOW_S = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


async def _count_in_redis(bucket: str) -> int:
    pipe = redis_client.get_client().pipeline(transaction=False)
    pipe.incr(bucket)
    pipe.expire(bucket, WINDOW_S + 1)
    count, _ = await pipe.execute()
    return int(count)


async def _count_in_cache(bucket: str) -> int:
    await cache.aadd(bucket, 0, timeout=WINDOW_S + 1)
    try:
        return int(await cache.aincr(bucket))
    except ValueError:  # expired between add and incr
        await cache.aset(bucket, 1, timeout=WINDOW_S + 1)
        return 1


async def rate_limit_hit(
    *, key_id: int, limit_per_minute: int, now: float | None = None
) -> RateDecision:
    """Count one request of ``key_id`` and say whether it is within its per-minute limit."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_S)
    bucket = f"api:ratelimit:{key_id}:{window}"
    count = None
    if redis_client.redis_available():
        try:
            count = await _count_in_redis(bucket)
        except REDIS_ERRORS:
            redis_client.redis_failed()
    if count is None:
        count = await _count_in_cache(bucket)
    retry_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
    return RateDecision(
        allowed=count <= limit_per_minute,
        limit=limit_per_minute,
        remaining=max(0, limit_per_minute - count),
        retry_after_s=retry_after,
    )
