"""Database down: the API answers 503 in its JSON error shape with Retry-After (as for a
Redis outage), never a 500 "Internal error"; also on /v1 once the key cache has expired."""

from __future__ import annotations

import json

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from api.services import auth_cache_clear

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def database_down(monkeypatch):
    """From now on every database connection is refused, as while the server restarts."""

    def refused(self):
        raise OperationalError("connection refused: the database system is shutting down")

    def down():
        monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refused)

    return down


async def _post(path: str, body: dict, token: str) -> httpx.Response:
    from config.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(
            path,
            content=json.dumps(body),
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )


CHAT = {"model": "router", "messages": [{"role": "user", "content": "hi"}]}


async def test_v1_after_key_cache_expiry_is_a_503_with_retry_after(
    make_key, fake_async_redis, database_down
):
    """The key must be read from the database (cache expired) while it is down."""
    _, token = await sync_to_async(make_key)()
    assert (await _post("/v1/chat/completions", CHAT, token)).status_code == 200
    auth_cache_clear()
    database_down()
    response = await _post("/v1/chat/completions", CHAT, token)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "database_unavailable")
    assert "retry" in error["message"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/routing/execute", {"text": "Summarise: the cat sat."}),
        ("/api/v1/routing/evaluate", {"script": "A short script."}),
        ("/api/v1/routing/execute", {"text": "hi", "async": True}),
    ],
)
async def test_routing_api_is_a_503_with_retry_after(
    path, body, make_key, fake_queue, database_down
):
    """execute / evaluate (inline and queued) with the database down: 503 in the routing
    API's shape, with Retry-After."""
    _, token = await sync_to_async(make_key)()
    assert (await _post(path, body, token)).status_code in (200, 202)  # key now cached
    database_down()
    response = await _post(path, body, token)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "database_unavailable"
