"""The embedded Redis is a real redis-server on a unix socket."""

from __future__ import annotations

import redis

from routing_platform.redis_embedded import socket_is_live, start_embedded_redis


def test_embedded_redis_starts_answers_and_is_reused(tmp_path):
    """Starting twice on one directory reuses the live server; stop ends it."""
    first = start_embedded_redis(tmp_path)
    try:
        client = redis.Redis.from_url(first.url)
        client.set("k", "v")
        again = start_embedded_redis(tmp_path)
        assert again.process is None  # reused, not a second server
        assert redis.Redis.from_url(again.url).get("k") == b"v"
    finally:
        first.stop()
    assert not socket_is_live(first.socket_path)
