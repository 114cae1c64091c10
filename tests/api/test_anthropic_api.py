"""POST /v1/messages through ninja's test client (simulated vendors): Anthropic's shapes in
and out, routed to any provider, tools, streaming events, errors in Anthropic's shape."""

from __future__ import annotations

import json

import pytest
from ninja.testing import TestAsyncClient

from api.anthropic_api import anthropic_api
from experiments.models import RoutedCall

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client():
    return TestAsyncClient(anthropic_api)


@pytest.fixture
def key_headers(token):
    return {"x-api-key": token}


def message(**overrides):
    body = {
        "model": "router",
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    }
    body.update(overrides)
    return body


async def test_message_is_answered_in_anthropic_shape_and_recorded(
    client, key_headers, fake_async_redis, drain_records
):
    response = await client.post("/messages", json=message(system="Be brief."), headers=key_headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["id"].startswith("msg_")
    assert body["content"][0]["type"] == "text" and body["content"][0]["text"]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert response["x-router-model"] == body["model"]
    assert await drain_records() == 1
    call = await RoutedCall.objects.aget(idempotency_key=f"anthropic:chatcmpl-{body['id'][4:]}")
    assert call.status == "success"


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "gemini-2.5-flash"])
async def test_tool_round_trip_on_an_openai_or_gemini_model(
    client, key_headers, fake_async_redis, drain_records, model
):
    """An Anthropic-shaped tool conversation, answered by a non-Anthropic model and back."""
    first = await client.post(
        "/messages", json=message(model=model, tools=[WEATHER]), headers=key_headers
    )
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["stop_reason"] == "tool_use"
    (tool_use,) = [block for block in body["content"] if block["type"] == "tool_use"]
    assert tool_use["name"] == "get_weather" and tool_use["input"] == {"city": "simulated"}
    turns = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": body["content"]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "18C and sunny"}
            ],
        },
    ]
    second = await client.post(
        "/messages", json=message(model=model, tools=[WEATHER], messages=turns), headers=key_headers
    )
    assert second.status_code == 200, second.content
    answer = second.json()
    assert answer["stop_reason"] == "end_turn"
    assert "18C and sunny" in answer["content"][0]["text"]
    assert answer["model"] == model
    assert await drain_records() == 2


async def test_stream_sends_anthropic_events(client, key_headers, fake_async_redis, drain_records):
    response = await client.post(
        "/messages",
        json=message(model="claude-haiku-4-5", stream=True, tools=[WEATHER]),
        headers=key_headers,
    )
    assert response.status_code == 200, response.content
    assert response["x-router-streaming"] == "passthrough"
    raw = response.content.decode()
    events = [
        (block.split("\n")[0][len("event: ") :], json.loads(block.split("\n")[1][len("data: ") :]))
        for block in raw.strip().split("\n\n")
    ]
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    starts = [
        data["content_block"]["type"] for name, data in events if name == "content_block_start"
    ]
    assert starts == ["tool_use"]
    arguments = "".join(
        data["delta"]["partial_json"]
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(arguments) == {"city": "simulated"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert await drain_records() == 1


@pytest.mark.parametrize(
    "body, status, error_type, fragment",
    [
        (message(max_tokens=None), 400, "invalid_request_error", "max_tokens"),
        (message(top_k=5), 400, "invalid_request_error", "top_k"),
        (
            message(model="claude-haiku-4-5", temperature=3),
            400,
            "invalid_request_error",
            "temperature",
        ),
        (
            message(tools=[{"name": "f", "input_schema": {"type": "array"}}]),
            400,
            "invalid_request_error",
            "object",
        ),
        (
            message(messages=[{"role": "user", "content": [{"type": "audio", "data": "x"}]}]),
            400,
            "invalid_request_error",
            "messages",
        ),
        (message(model="nope-model"), 404, "not_found_error", "nope-model"),
    ],
)
async def test_errors_are_in_anthropic_shape(
    client, key_headers, fake_async_redis, drain_records, body, status, error_type, fragment
):
    response = await client.post("/messages", json=body, headers=key_headers)
    assert response.status_code == status, response.content
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == error_type
    assert fragment in payload["error"]["message"]
    await drain_records()
    assert not await RoutedCall.objects.filter(status="success").aexists()


async def test_missing_key_is_an_authentication_error(client, fake_async_redis):
    response = await client.post("/messages", json=message())
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


async def test_routed_stream_with_escalation_is_buffered_events(
    client, key_headers, fake_async_redis, drain_records, settings
):
    settings.ROUTER_ENABLE_ESCALATION = True
    response = await client.post("/messages", json=message(stream=True), headers=key_headers)
    assert response.status_code == 200, response.content
    assert response["x-router-streaming"] == "buffered"
    names = [block.split("\n")[0] for block in response.content.decode().strip().split("\n\n")]
    assert names[0] == "event: message_start" and names[-1] == "event: message_stop"
    assert "event: content_block_delta" in names
    assert await drain_records() == 1
