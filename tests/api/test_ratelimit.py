"""The per-key rate limiter: Redis counters, and the cache fallback when Redis is down."""

from __future__ import annotations

import pytest

from api import redis_client
from api.ratelimit import rate_limit_hit


async def test_counts_per_minute_window_in_redis(fake_async_redis):
    """The third call in a window with limit 2 is refused with the seconds left to wait."""
    now = 60_020.0  # 20 s into a window
    decisions = [await rate_limit_hit(key_id=1, limit_per_minute=2, now=now) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].retry_after_s == 40
    assert decisions[0].remaining == 1
    later = await rate_limit_hit(key_id=1, limit_per_minute=2, now=now + 60)
    assert later.allowed


async def test_keys_are_counted_separately(fake_async_redis):
    """One key's traffic does not use another key's budget."""
    assert (await rate_limit_hit(key_id=1, limit_per_minute=1, now=0)).allowed
    assert (await rate_limit_hit(key_id=2, limit_per_minute=1, now=0)).allowed
    assert not (await rate_limit_hit(key_id=1, limit_per_minute=1, now=0)).allowed


async def test_redis_down_falls_back_to_the_cache_and_opens_the_breaker(redis_down):
    """With Redis unreachable the limit is still enforced (per process), without raising."""
    decisions = [await rate_limit_hit(key_id=9, limit_per_minute=2, now=600.0) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert not redis_client.redis_available()


@pytest.mark.redis_server
async def test_counts_in_a_real_redis(real_redis, settings):
    """Against a real Redis the counter lives in Redis (shared by server processes)."""
    for _ in range(2):
        await rate_limit_hit(key_id=42, limit_per_minute=5, now=120.0)
    assert int(real_redis.get("api:ratelimit:42:2")) == 2
    assert real_redis.ttl("api:ratelimit:42:2") > 0
