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


async def test_high_limits_are_counted_in_leases_and_never_exceeded(fake_async_redis):
    """A key allowed 1,000 a minute takes leases of 10 requests: one Redis round trip per
    lease, the Redis count covers what was leased, and request 1,001 is refused."""
    import fakeredis

    from api.ratelimit import lease_size

    assert lease_size(1_000) == 10
    decisions = [
        await rate_limit_hit(key_id=5, limit_per_minute=1_000, now=60.0) for _ in range(1_001)
    ]
    assert sum(d.allowed for d in decisions) == 1_000
    assert not decisions[-1].allowed
    assert decisions[-1].retry_after_s == 60
    assert decisions[0].remaining == 999
    counter = fakeredis.FakeRedis(server=fake_async_redis)
    assert int(counter.get("api:ratelimit:5:1")) == 1_010


async def test_leases_of_two_processes_add_up_in_redis(fake_async_redis, monkeypatch):
    """Two processes (two lease tables) sharing one key's limit of 400 never admit more than
    400 requests together, and admit at least 99% of it."""
    from api import ratelimit

    tables = [{}, {}]
    admitted = 0
    for turn in range(600):
        monkeypatch.setattr(ratelimit, "_leases", tables[turn % 2])  # alternate "processes"
        admitted += (await rate_limit_hit(key_id=6, limit_per_minute=400, now=0.0)).allowed
    assert 396 <= admitted <= 400
    assert ratelimit.lease_size(199) == 1
