"""Per-key rate limits: a fixed one-minute window counted in Redis, else in Django's cache.

Redis makes the limit hold across server processes; when Redis is unreachable the count
falls back to the (per-process) Django cache rather than failing the request.

Counting costs a Redis round trip, which on the OpenAI-compatible endpoint's hot path is a
real share of a request's CPU (a loopback ``send`` pays for the receiver's TCP work too).
So a key with a high limit is counted in *leases*: a process takes ``lease_size(limit)``
requests at once (``INCRBY``; at most 1% of the limit, at most ``LEASE_MAX``) and counts
them down locally. A lease is counted in Redis as used, so the limit still holds across
processes and is never exceeded; a key can at worst be refused up to 1% of its limit early
per process (capacity leased but unused when the window ends). Limits under 200 a minute
use leases of one: one round trip per request, exact as before.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from api import redis_client
from api.redis_client import REDIS_ERRORS

WINDOW_S = 60
LEASE_MAX = 64
LEASE_FRACTION = 100  # a lease is at most 1/100 of the limit


def lease_size(limit_per_minute: int) -> int:
    return max(1, min(LEASE_MAX, limit_per_minute // LEASE_FRACTION))


@dataclass
class _Lease:
    bucket: str
    left: int  # requests this process may still count without asking Redis
    next_count: int  # the window's count the next of them will be


# key id -> this process's lease in the current window (one event loop per server process)
_leases: dict[int, _Lease] = {}


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


async def _count_in_redis(bucket: str, amount: int = 1) -> int:
    pipe = redis_client.get_client().pipeline(transaction=False)
    pipe.incrby(bucket, amount)
    pipe.expire(bucket, WINDOW_S + 1)
    count, _ = await pipe.execute()
    return int(count)


async def _count_leased(key_id: int, bucket: str, limit: int, size: int) -> int:
    """This request's count in the window, from this process's lease (a new one if spent)."""
    lease = _leases.get(key_id)
    if lease is not None and lease.bucket == bucket and lease.left > 0:
        lease.left -= 1
        lease.next_count += 1
        return lease.next_count - 1
    end = await _count_in_redis(bucket, size)
    first = end - size + 1
    # Never lease past the limit: counts beyond it are refusals, not capacity.
    usable = max(0, min(size, limit - first + 1))
    _leases[key_id] = _Lease(bucket=bucket, left=max(0, usable - 1), next_count=first + 1)
    return first


def leases_clear() -> None:
    """Forget this process's leases (tests)."""
    _leases.clear()


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
        size = lease_size(limit_per_minute)
        try:
            if size > 1:
                count = await _count_leased(key_id, bucket, limit_per_minute, size)
            else:
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
