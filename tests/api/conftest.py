"""Fixtures of the API tests: API keys, ninja test clients and a fake Redis for counters."""

from __future__ import annotations

import contextlib
from pathlib import Path

import fakeredis
import pytest

from api import redis_client
from api.ratelimit import leases_clear
from api.recording import record_writer, record_writer_stop
from api.services import api_key_create, auth_cache_clear
from tests.conftest import REPO_ROOT, redis_url_for_db


@pytest.fixture(autouse=True)
def _fresh_api_state(settings):
    """Each test starts with an empty auth cache and a closed Redis breaker."""
    settings.ROUTER_PROVIDER_MODE = "simulated"
    settings.ROUTER_SIMULATED_LATENCY_MS = 1.0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast admin_user
    auth_cache_clear()
    redis_client.redis_breaker_reset()
    leases_clear()
    yield
    auth_cache_clear()
    redis_client.redis_breaker_reset()
    leases_clear()
    record_writer_stop()  # its thread must not outlive the test's database


@pytest.fixture
def flush_records():
    """Wait for the in-process record writer (records written after the answer)."""
    from asgiref.sync import sync_to_async

    async def flush() -> bool:
        return await sync_to_async(record_writer().flush, thread_sensitive=False)()

    return flush


@pytest.fixture
def fake_async_redis(monkeypatch):
    """The API's Redis (rate limits, pings, call records; async and sync clients) on one
    in-memory fakeredis server."""
    server = fakeredis.FakeServer()
    clients = {}
    sync_client = fakeredis.FakeRedis(server=server)

    def get_client():
        import asyncio

        loop = asyncio.get_running_loop()
        if loop not in clients:
            clients[loop] = fakeredis.aioredis.FakeRedis(server=server)
        return clients[loop]

    monkeypatch.setattr(redis_client, "get_client", get_client)
    monkeypatch.setattr(redis_client, "get_sync_client", lambda: sync_client)
    return server


@pytest.fixture
def drain_records():
    """Run the call-records drain job (what an RQ worker does), from async tests."""
    from asgiref.sync import sync_to_async

    from api.jobs import call_records_drain

    async def drain() -> int:
        return await sync_to_async(call_records_drain)()

    return drain


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


# --- A real server process ------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A running server: its URL, an API key for it, its environment and database file.

    A plain class with a short repr: Hypothesis prints fixtures of failing examples, and
    neither the environment nor the token belongs in test output.
    """

    def __init__(self, *, base_url: str, token: str, env: dict, database_path: Path) -> None:
        self.base_url, self.token, self.env, self.database_path = (
            base_url,
            token,
            env,
            database_path,
        )

    def __repr__(self) -> str:
        return f"<ServerProcess {self.base_url}>"

    def query(self, sql: str, params=()):
        """Read the server's SQLite database directly (what it recorded)."""
        import sqlite3

        with sqlite3.connect(self.database_path, timeout=10) as connection:
            return connection.execute(sql, params).fetchall()

    def wait_for(self, sql: str, expected, timeout_s: float = 15.0):
        """Poll ``sql`` until its first value equals ``expected`` (records are written after
        the answer is sent); returns the last value seen."""
        import time

        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.query(sql)[0][0]
            if value == expected:
                return value
            time.sleep(0.05)
        return value


def _insert_api_key(database_path: Path, *, name: str, rate_limit_per_minute: int) -> str:
    """Write an API key row straight into a migrated database (saves a Django start-up);
    the CLI that normally does this is tested on its own."""
    import secrets
    import sqlite3

    from api.services import token_hash

    prefix = secrets.token_hex(4)
    token = f"rk_{prefix}_{secrets.token_urlsafe(32)}"
    with sqlite3.connect(database_path) as connection:
        connection.execute(
            "INSERT INTO api_apikey (name, prefix, secret_hash, scopes, rate_limit_per_minute,"
            " created_at) VALUES (?, ?, ?, ?, ?, datetime('now'))",
            (name, prefix, token_hash(token), '["read", "write"]', rate_limit_per_minute),
        )
    return token


def _copy_test_database(database_path: Path, django_db_setup, django_db_blocker) -> bool:
    """Copy pytest-django's freshly migrated SQLite test database to a file (a subprocess
    ``migrate`` takes many seconds); False when the tests run on another database."""
    from django.db import connection

    # Only pytest-django's in-memory test database: never the developer's database file
    # (which is what `connection` still points at when no collected test uses the DB).
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        return False
    import sqlite3

    with django_db_blocker.unblock():
        connection.ensure_connection()
        with sqlite3.connect(database_path) as target:
            connection.connection.backup(target)
    return True


def server_answers(base_url: str, process, timeout_s: float = 60.0) -> bool:
    """True once ``base_url/health`` answers; False if ``process`` exits or time runs out."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/health", timeout=2)
            return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def server_process(tmp_path_factory, real_redis_url, django_db_setup, django_db_blocker):
    """uvicorn serving the platform on 127.0.0.1 (a free port) and an RQ worker, with a
    migrated file-based SQLite database, a real Redis and simulated providers; yields the
    server's URL and an API key."""
    with serve_platform(
        tmp_path_factory, real_redis_url, django_db_setup, django_db_blocker, redis_db=1
    ) as server:
        yield server


@contextlib.contextmanager
def serve_platform(
    tmp_path_factory,
    real_redis_url,
    django_db_setup,
    django_db_blocker,
    *,
    redis_db,
    overrides=None,
):
    """A uvicorn server and an RQ worker of the platform (see ``server_process``); ``env``
    overrides its environment (e.g. real providers pointed at a loopback upstream)."""
    import os
    import subprocess
    import sys

    from routing_platform.launcher import uvicorn_argv

    data_dir = tmp_path_factory.mktemp("server")
    database_path = data_dir / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{database_path}",
        "ROUTING_DATA_DIR": str(data_dir),
        # Its own Redis database: this worker lives all session and would otherwise take jobs
        # that other tests enqueue on the shared server (tests/experiments/test_rq_integration).
        "REDIS_URL": redis_url_for_db(real_redis_url, redis_db),
        "ROUTER_PROVIDER_MODE": "simulated",
        "ROUTER_SIMULATED_LATENCY_MS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    env.update(overrides or {})
    manage = [sys.executable, str(REPO_ROOT / "manage.py")]
    if not _copy_test_database(database_path, django_db_setup, django_db_blocker):
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=REPO_ROOT
        )
    token = _insert_api_key(database_path, name="e2e", rate_limit_per_minute=100_000)
    port = _free_port()
    log = open(data_dir / "uvicorn.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        uvicorn_argv("127.0.0.1", port),
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [
            *manage,
            "rqworker",
            "routing",
            "default",
            "shadow",
            "--worker-class",
            "rq.worker.SimpleWorker",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    if not server_answers(base_url, process):
        process.kill()
        log.close()
        raise RuntimeError(
            f"uvicorn did not start; see {data_dir / 'uvicorn.log'}:\n"
            + (data_dir / "uvicorn.log").read_text()[-3000:]
        )
    try:
        yield ServerProcess(base_url=base_url, token=token, env=env, database_path=database_path)
    finally:
        _stop(worker, process, log)


def _stop(worker, process, log) -> None:
    import subprocess

    for child in (worker, process):
        child.terminate()
    for child in (worker, process):
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)
    log.close()
