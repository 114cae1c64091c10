"""Fixtures of the API tests: API keys, ninja test clients and a fake Redis for counters."""

from __future__ import annotations

import fakeredis
import pytest

from api import redis_client
from api.services import api_key_create, auth_cache_clear


@pytest.fixture(autouse=True)
def _fresh_api_state(settings):
    """Each test starts with an empty auth cache and a closed Redis breaker."""
    settings.ROUTER_PROVIDER_MODE = "simulated"
    settings.ROUTER_SIMULATED_LATENCY_MS = 1.0
    auth_cache_clear()
    redis_client.redis_breaker_reset()
    yield
    auth_cache_clear()
    redis_client.redis_breaker_reset()


@pytest.fixture
def fake_async_redis(monkeypatch):
    """Rate-limit counters and pings on an in-memory (fakeredis) asyncio Redis."""
    server = fakeredis.FakeServer()
    clients = {}

    def get_client():
        import asyncio

        loop = asyncio.get_running_loop()
        if loop not in clients:
            clients[loop] = fakeredis.aioredis.FakeRedis(server=server)
        return clients[loop]

    monkeypatch.setattr(redis_client, "get_client", get_client)
    monkeypatch.setattr("api.ratelimit.get_client", get_client)
    return server


def point_queues_at(url, settings, monkeypatch):
    """Point every RQ queue at ``url``, in Django's settings and in django-rq's copy of them
    (django_rq.settings.QUEUES is read once at import, so the settings fixture alone misses it).
    """
    import django_rq.settings

    config = {name: {"URL": url, "DEFAULT_TIMEOUT": 300} for name in settings.RQ_QUEUE_NAMES}
    settings.RQ_QUEUES = config
    for name, value in config.items():
        monkeypatch.setitem(django_rq.settings.QUEUES, name, value)


@pytest.fixture
def redis_down(settings, monkeypatch, tmp_path):
    """Every Redis URL points at a unix socket nobody listens on."""
    url = f"unix://{tmp_path / 'nobody-listens.sock'}?db=0"
    point_queues_at(url, settings, monkeypatch)
    return url


@pytest.fixture
def fake_queue(settings, monkeypatch, fake_async_redis):
    """django-rq queues (sync) and the API's pings (async) on one in-memory fakeredis."""
    import django_rq.queues

    connection = fakeredis.FakeRedis(server=fake_async_redis)
    monkeypatch.setattr(django_rq.queues, "get_connection", lambda *a, **k: connection)
    return connection


@pytest.fixture
def live_redis(real_redis_url, settings, monkeypatch):
    """Queues, rate limits and health on a real Redis, emptied before and after."""
    import redis

    point_queues_at(real_redis_url, settings, monkeypatch)
    connection = redis.Redis.from_url(real_redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def make_key():
    """Create an API key; returns (ApiKey, token). The test marks its own database access."""

    def make(name="test", scopes=("read", "write"), rate_limit_per_minute=None):
        return api_key_create(
            name=name, scopes=list(scopes), rate_limit_per_minute=rate_limit_per_minute
        )

    return make


@pytest.fixture
def token(make_key):
    return make_key()[1]


@pytest.fixture
def auth_headers(token):
    return {"Authorization": f"Bearer {token}"}
