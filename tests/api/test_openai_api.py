"""The OpenAI-compatible endpoint through ninja's test client (simulated providers)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from ninja.testing import TestAsyncClient

from api.openai_api import openai_api
from experiments.models import RoutedCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    return TestAsyncClient(openai_api)


def chat(**overrides):
    body = {"model": "router", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
    body.update(overrides)
    return body


async def test_router_model_answers_a_chat_completion_with_usage_and_headers(
    client, auth_headers, fake_async_redis, drain_records
):
    """model "router" routes smartly; the answer is a chat completion with usage and x-router-*."""
    response = await client.post("/chat/completions", json=chat(), headers=auth_headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    headers = response["x-router-tier"], response["x-router-model"]
    assert headers[0] in {"mini", "standard", "premium"}
    assert headers[1] == body["model"]
    assert float(response["x-router-cost-usd"]) > 0
    assert response["x-router-escalated"] in {"true", "false"}
    assert float(response["x-router-overhead-ms"]) >= 0
    assert await drain_records() == 1
    call = await RoutedCall.objects.aget(idempotency_key=f"openai:{body['id']}")
    assert call.kind == "chat"
    assert call.source == "openai"
    assert call.status == "success"
    assert call.model == body["model"]


async def test_concrete_model_passes_through(client, auth_headers, fake_async_redis, drain_records):
    """A model name from the catalog is used as is, without routing."""
    response = await client.post(
        "/chat/completions", json=chat(model="gpt-4.1-mini"), headers=auth_headers
    )
    assert response.status_code == 200, response.content
    assert response.json()["model"] == "gpt-4.1-mini"
    assert response["x-router-model"] == "gpt-4.1-mini"
    await drain_records()


async def test_stream_sends_chunks_usage_last_and_done(
    client, auth_headers, fake_async_redis, drain_records
):
    """stream: true answers server-sent chunks, usage in the final chunk, then [DONE]."""
    response = await client.post("/chat/completions", json=chat(stream=True), headers=auth_headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    raw = response.content.decode()
    events = [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0
    await drain_records()


@pytest.mark.parametrize(
    "body, status, fragment, param",
    [
        (chat(messages=[]), 400, "messages", "messages"),
        (chat(temperature=5), 400, "temperature", "temperature"),
        (chat(n=2), 400, "n", "n"),
        ({"messages": [{"role": "user", "content": "hi"}]}, 400, "model", "model"),
        (chat(messages=[{"role": "wizard", "content": "hi"}]), 400, "role", "messages.0.role"),
        (chat(messages=[{"role": "user", "content": "   "}]), 400, "no text", "messages"),
        (chat(model="no-such-model"), 404, "no-such-model", "model"),
    ],
)
async def test_bad_requests_answer_openai_errors(
    client, auth_headers, fake_async_redis, body, status, fragment, param, drain_records
):
    """Invalid input is a 4xx in OpenAI's error shape, naming the field."""
    response = await client.post("/chat/completions", json=body, headers=auth_headers)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    await drain_records()


async def test_unknown_model_is_recorded_as_an_error_call(
    client, auth_headers, fake_async_redis, drain_records
):
    """A routed call that fails in the engine is still recorded, as an error."""
    response = await client.post(
        "/chat/completions", json=chat(model="no-such-model"), headers=auth_headers
    )
    assert response.status_code == 404
    assert await drain_records() == 1
    call = await RoutedCall.objects.aget(kind="chat")
    assert call.status == "error"
    assert call.error_type == "UnknownModelError"


async def test_invalid_json_is_a_400(client, auth_headers, fake_async_redis):
    """A body that is not JSON says so."""
    response = await client.post(
        "/chat/completions", data="{not json", headers=auth_headers, content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


async def test_models_lists_router_and_catalog(client, auth_headers, fake_async_redis):
    """GET /v1/models lists "router" first, then the catalog's models."""
    response = await client.get("/models", headers=auth_headers)
    assert response.status_code == 200
    ids = [model["id"] for model in response.json()["data"]]
    assert ids[0] == "router"
    assert "gpt-4.1-mini" in ids
    assert response.json()["object"] == "list"


@pytest.mark.parametrize(
    "headers, status, fragment",
    [
        ({}, 401, "Missing API key"),
        ({"Authorization": "Basic abc"}, 401, "Bearer"),
        ({"Authorization": "Bearer rk_nope_nope"}, 401, "not valid"),
    ],
)
async def test_auth_errors_are_openai_shaped(client, fake_async_redis, headers, status, fragment):
    """Without a valid key the endpoint answers 401 in OpenAI's error shape."""
    response = await client.post("/chat/completions", json=chat(), headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["code"] == "invalid_api_key"


async def test_read_only_key_cannot_create_completions(client, make_key, fake_async_redis):
    """Chat completions need the write scope: a read-only key gets 403."""
    _, token = await sync_to_async(make_key)(scopes=["read"])
    response = await client.post(
        "/chat/completions", json=chat(), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert "write" in response.json()["error"]["message"]


async def test_rate_limit_answers_429_with_retry_after(client, make_key, fake_async_redis):
    """Past its per-minute limit a key gets 429 with Retry-After, in OpenAI's shape."""
    _, token = await sync_to_async(make_key)(rate_limit_per_minute=1)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/models", headers=headers)).status_code == 200
    response = await client.get("/models", headers=headers)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert "per minute" in response.json()["error"]["message"]


def test_call_record_payloads_read_back_as_json_dumps_default_str_wrote_them():
    """api.recording.payload_json (orjson) reads back like json.dumps(default=str): Decimals
    and datetimes as their str(), non-string keys as strings, huge integers kept."""
    import datetime
    import json
    from decimal import Decimal

    from api.recording import payload_json

    payload = {
        "cost": Decimal("0.0000176"),
        "at": datetime.datetime(2026, 11, 26, 16, 0, tzinfo=datetime.UTC),
        1: "one",
        "text": "héllo",
        "tuple": (1, 2.5, None, True),
        "big": 2**70,
    }
    assert json.loads(payload_json(payload)) == json.loads(json.dumps(payload, default=str))
