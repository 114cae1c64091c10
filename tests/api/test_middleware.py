"""Oversized bodies are refused early with 413, in each API's error shape."""

from __future__ import annotations

import asyncio

import pytest
from django.test import AsyncClient


@pytest.fixture
def small_limit(settings):
    settings.API_MAX_BODY_BYTES = 2048
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048


async def test_openai_endpoint_refuses_a_large_content_length_before_auth(small_limit):
    """A body over API_MAX_BODY_BYTES is a 413 in OpenAI's shape, before the key is checked."""
    body = '{"model": "router", "messages": [{"role": "user", "content": "' + "x" * 5000 + '"}]}'
    response = await AsyncClient().post(
        "/v1/chat/completions", data=body, content_type="application/json"
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert "2048 bytes" in error["message"]
    assert error["code"] == "payload_too_large"


async def test_routing_api_refuses_a_large_body_with_its_own_shape(small_limit):
    """The routing API answers 413 with {"message", "code"}."""
    response = await AsyncClient().post(
        "/api/v1/routing/execute", data="y" * 4096, content_type="application/json"
    )
    assert response.status_code == 413
    assert "API_MAX_BODY_BYTES" in response.json()["message"]


async def test_small_bodies_pass_through(small_limit):
    """A body within the limit reaches the API (here: 401, no key)."""
    response = await AsyncClient().post(
        "/api/v1/routing/execute", data='{"text": "hi"}', content_type="application/json"
    )
    assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_body_without_content_length_is_capped_when_read(
    small_limit, make_key, fake_async_redis
):
    """A chunked body (no Content-Length) over the limit is a 413 when the API reads it."""
    from asgiref.sync import sync_to_async

    _, token = await sync_to_async(make_key)()
    body = ('{"text": "' + "z" * 5000 + '"}').encode()
    scope_headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"transfer-encoding", b"chunked"),
    ]
    from config.asgi import application

    sent = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    await application(
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/v1/routing/execute",
            "raw_path": b"/api/v1/routing/execute",
            "query_string": b"",
            "headers": scope_headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        },
        receive,
        send,
    )
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"API_MAX_BODY_BYTES" in payload


async def test_malformed_content_length_is_a_400():
    """A Content-Length that is not a number is refused with a message."""
    response = await AsyncClient().post(
        "/v1/chat/completions",
        data="{}",
        content_type="application/json",
        headers={"content-length": "abc"},
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["error"]["message"]
