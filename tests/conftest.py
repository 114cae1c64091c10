"""Shared fixtures: real Redis (embedded or REDIS_URL), fakeredis, and shared-data paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ROUTING_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    """Every database test is also a `postgres` test: CI runs them again on PostgreSQL."""
    for item in items:
        if item.get_closest_marker("django_db") or "db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def redis_url_for_db(url: str, db: int) -> str:
    """``url`` pointing at database number ``db`` of the same server.

    A long-lived worker started by one fixture must not share a database with tests that
    flush it or enqueue their own jobs: it would take (and run against its own SQLite file)
    jobs that were meant for another test's worker.
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(db)
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def real_redis_url(tmp_path_factory) -> str:
    """A real Redis server: REDIS_URL when set (CI's apt redis-server), else an embedded one."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from routing_platform.redis_embedded import start_embedded_redis

    server = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture
def real_redis(real_redis_url, settings, monkeypatch):
    """Point django-rq at the real Redis and start each test with empty queues."""
    import django_rq.settings
    import redis

    connection = redis.Redis.from_url(real_redis_url)
    connection.flushdb()
    queues = {
        name: {"URL": real_redis_url, "DEFAULT_TIMEOUT": 300} for name in settings.RQ_QUEUE_NAMES
    }
    settings.RQ_QUEUES = queues
    # django-rq copied RQ_QUEUES into its own module at import time: point that copy too.
    monkeypatch.setattr(django_rq.settings, "QUEUES", queues)
    # ...and into QUEUES_LIST, which django_rq.utils (the admin's queue pages) imported by
    # name: change its entries in place so every holder of the list sees the real Redis.
    for entry in django_rq.settings.QUEUES_LIST:
        if entry["name"] in queues:
            monkeypatch.setitem(entry, "connection_config", queues[entry["name"]])
    yield connection
    connection.flushdb()


@pytest.fixture
def fake_redis(settings, monkeypatch):
    """django-rq queues on fakeredis, for unit tests that only enqueue."""
    import django_rq
    import fakeredis

    server = fakeredis.FakeServer()
    connection = fakeredis.FakeRedis(server=server)

    def fake_connection(*args, **kwargs):
        return connection

    monkeypatch.setattr(django_rq.queues, "get_redis_connection", fake_connection)
    # get_queue() resolves connections through connection_utils.get_connection.
    monkeypatch.setattr(django_rq.connection_utils, "get_redis_connection", fake_connection)
    return connection


@pytest.fixture(scope="session")
def routellm_dir() -> Path:
    """The shared RouteLLM data; tests that need it skip with the missing path named."""
    path = SHARED_DATA / "routellm"
    if not (path / "mmlu_dev.csv").exists() or not (path / "gsm8k_dev.csv").exists():
        pytest.skip(
            f"shared routing data not found at {path} (expected mmlu_dev.csv, gsm8k_dev.csv)"
        )
    return path
