"""With Redis down: 503 JSON where the queue is needed, everything else keeps working."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from api import redis_client
from experiments.models import RoutedCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def headers(make_key):
    _, token = await sync_to_async(make_key)()
    return {"Authorization": f"Bearer {token}"}


async def test_health_reports_redis_down_as_degraded(redis_down):
    """/health answers JSON naming Redis as down: "degraded", still 200 (calls still work)."""
    for path in ("/health", "/api/v1/routing/health"):
        response = await AsyncClient().get(path)
        assert response.status_code == 200, path
        body = response.json()
        assert body["status"] == "degraded"
        assert body["database"]["ok"] is True
        assert body["redis"]["ok"] is False
        assert body["redis"]["error"]
        assert body["workers"]["ok"] is False


async def test_health_is_503_when_the_database_is_down(monkeypatch):
    """Without the database /health is 503 "down"."""

    def database_down():
        return {"ok": False, "vendor": "sqlite", "error": "OperationalError: unable to open"}

    monkeypatch.setattr("api.health._database_check", database_down)
    response = await AsyncClient().get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"


async def test_async_execute_is_503_and_records_nothing_half_done(redis_down, headers):
    """Queueing with Redis down is a 503 JSON message with Retry-After (as the database's);
    no queued row is left behind."""
    response = await AsyncClient().post(
        "/api/v1/routing/execute",
        data={"text": "hello", "async": True},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Redis" in response.json()["message"]
    assert await RoutedCall.objects.acount() == 0


async def test_redis_lost_between_check_and_enqueue_is_recorded_as_an_error(
    redis_down, headers, monkeypatch
):
    """If Redis dies after the check, the call ends as an error row with the reason (not lost)."""

    async def looks_alive():
        return True, "ok"

    monkeypatch.setattr("api.routing_api.redis_ping", looks_alive)
    response = await AsyncClient().post(
        "/api/v1/routing/execute",
        data={"text": "hello", "async": True},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    call = await RoutedCall.objects.aget()
    assert call.status == "error"
    assert call.error_type == "QueueUnavailable"


async def test_calls_that_need_no_queue_still_work(redis_down, headers, flush_records):
    """Inline execute and chat completions answer 200 and are recorded (rate limit falls back;
    the chat's record by the in-process writer, after the answer)."""
    client = AsyncClient()
    execute = await client.post(
        "/api/v1/routing/execute",
        data={"text": "hello"},
        content_type="application/json",
        headers=headers,
    )
    assert execute.status_code == 200, execute.content
    chat = await client.post(
        "/v1/chat/completions",
        data={"model": "router", "messages": [{"role": "user", "content": "hi"}]},
        content_type="application/json",
        headers=headers,
    )
    assert chat.status_code == 200, chat.content
    assert await flush_records()
    assert await RoutedCall.objects.filter(status="success").acount() == 2
    assert not redis_client.redis_available()


def test_admin_still_loads(redis_down, admin_client):
    """The admin index and the API key list render with Redis down."""
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/api/apikey/").status_code == 200
