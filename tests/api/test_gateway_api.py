"""Pass-through fidelity of /v1/chat/completions (simulated vendors): tools, JSON schema,
images, finish reasons, logprobs, usage details, streaming modes, and 400s naming the field
for what a model cannot honour or a request gets wrong."""

from __future__ import annotations

import base64
import json

import pytest
from ninja.testing import TestAsyncClient

from api import gateway_checks
from api.errors import classify, openai_error_body
from api.gateway import ChunkWriter, relay_events
from api.openai_api import openai_api
from experiments.models import RoutedCall
from routing_platform.engine.chat import StreamDelta
from routing_platform.engine.errors import ProviderOverloadedError

pytestmark = pytest.mark.django_db(transaction=True)

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(200)).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def client():
    return TestAsyncClient(openai_api)


def chat(**overrides):
    body = {"model": "router", "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    body.update(overrides)
    return body


def sse_events(response) -> list[dict]:
    raw = response.content.decode()
    events = [line[len("data: ") :] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


async def test_tool_call_round_trip(client, auth_headers, fake_async_redis, drain_records):
    """Tools offered -> a tool call with finish_reason tool_calls; the tool's result sent
    back -> a text answer that used it."""
    first = await client.post("/chat/completions", json=chat(tools=[WEATHER]), headers=auth_headers)
    assert first.status_code == 200, first.content
    choice = first.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "simulated"}
    messages = [
        chat()["messages"][0],
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"},
    ]
    second = await client.post(
        "/chat/completions", json=chat(messages=messages, tools=[WEATHER]), headers=auth_headers
    )
    assert second.status_code == 200, second.content
    answer = second.json()["choices"][0]
    assert answer["finish_reason"] == "stop"
    assert "18C and sunny" in answer["message"]["content"]
    assert await drain_records() == 2


async def test_json_schema_answer_matches_the_schema(client, auth_headers, fake_async_redis):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    response = await client.post(
        "/chat/completions",
        json=chat(
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
        ),
        headers=auth_headers,
    )
    assert response.status_code == 200, response.content
    answer = json.loads(response.json()["choices"][0]["message"]["content"])
    assert set(answer) == {"city", "population"} and isinstance(answer["population"], int)


async def test_image_part_is_accepted_by_a_vision_model(client, auth_headers, fake_async_redis):
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    response = await client.post(
        "/chat/completions",
        json=chat(model="claude-haiku-4-5", messages=[{"role": "user", "content": content}]),
        headers=auth_headers,
    )
    assert response.status_code == 200, response.content


async def test_finish_reason_length_logprobs_and_usage_details(
    client, auth_headers, fake_async_redis
):
    response = await client.post(
        "/chat/completions",
        json=chat(model="gpt-4.1-mini", max_tokens=1, logprobs=True),
        headers=auth_headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["logprobs"]["content"][0]["logprob"] <= 0
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}


@pytest.mark.parametrize(
    "body, param, fragment",
    [
        (chat(model="claude-haiku-4-5", seed=3), "seed", "claude-haiku-4-5"),
        (chat(model="claude-haiku-4-5", logprobs=True), "logprobs", "not supported"),
        (
            chat(model="gemini-2.5-flash", parallel_tool_calls=False, tools=[WEATHER]),
            "parallel_tool_calls",
            "gemini",
        ),
        (
            chat(
                model="gemini-2.5-flash",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                        ],
                    }
                ],
            ),
            "image_url.http",
            "gemini-2.5-flash",
        ),
    ],
)
async def test_a_field_the_model_cannot_honour_is_a_400_naming_it(
    client, auth_headers, fake_async_redis, drain_records, body, param, fragment
):
    response = await client.post("/chat/completions", json=body, headers=auth_headers)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == param
    assert fragment in error["message"]
    await drain_records()
    assert not await RoutedCall.objects.filter(status="success").aexists()


async def test_route_mode_picks_only_models_that_honour_the_fields(
    client, auth_headers, fake_async_redis
):
    """seed: Anthropic cannot, so the router answers with an OpenAI or Gemini model."""
    for prompt in ("hi", "Prove that the square root of two is irrational, step by step."):
        response = await client.post(
            "/chat/completions",
            json=chat(seed=1, messages=[{"role": "user", "content": prompt}]),
            headers=auth_headers,
        )
        assert response.status_code == 200, response.content
        assert not response.json()["model"].startswith("claude")


@pytest.mark.parametrize(
    "overrides, param",
    [
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "strnig"}},
                    }
                ]
            },
            "tools.0.function.parameters",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
                ]
            },
            "tools.0.function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools.0.function.name",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "messages.0.content",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:text/plain;base64,AAAA"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.content",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "function": {"name": "other"}},
            },
            "tool_choice",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 5}},
                }
            },
            "response_format.json_schema.schema",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "not json"},
                            }
                        ],
                    },
                ]
            },
            "messages.1.tool_calls.0.function.arguments",
        ),
    ],
)
async def test_bad_gateway_input_is_a_400_in_openai_shape(
    client, auth_headers, fake_async_redis, drain_records, overrides, param
):
    response = await client.post("/chat/completions", json=chat(**overrides), headers=auth_headers)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"].startswith(param), error
    assert await drain_records() == 0


async def test_oversize_image_is_a_400(client, auth_headers, fake_async_redis, monkeypatch):
    monkeypatch.setattr(gateway_checks, "IMAGE_MAX_BYTES", 100)
    content = [{"type": "image_url", "image_url": {"url": PNG}}]
    response = await client.post(
        "/chat/completions",
        json=chat(messages=[{"role": "user", "content": content}]),
        headers=auth_headers,
    )
    assert response.status_code == 400
    assert "limit is 100 bytes" in response.json()["error"]["message"]


async def test_named_model_streams_through_and_records_after_the_end(
    client, auth_headers, fake_async_redis, drain_records
):
    """A named model's stream is relayed (x-router-streaming: passthrough): tool call
    deltas, the finish reason, usage last; the call is recorded once the stream ended."""
    response = await client.post(
        "/chat/completions",
        json=chat(model="gemini-2.5-flash", stream=True, tools=[WEATHER]),
        headers=auth_headers,
    )
    assert response.status_code == 200, response.content
    assert response["x-router-streaming"] == "passthrough"
    chunks = sse_events(response)
    calls = [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls", [])
    ]
    assert calls[0]["function"]["name"] == "get_weather"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert await drain_records() == 1
    call = await RoutedCall.objects.aget(kind="chat")
    assert call.status == "success" and call.model == "gemini-2.5-flash"


async def test_routed_stream_with_escalation_is_buffered_and_says_so(
    client, auth_headers, fake_async_redis, drain_records, settings
):
    settings.ROUTER_ENABLE_ESCALATION = True
    response = await client.post("/chat/completions", json=chat(stream=True), headers=auth_headers)
    assert response["x-router-streaming"] == "buffered"
    settings.ROUTER_ENABLE_ESCALATION = False
    response = await client.post("/chat/completions", json=chat(stream=True), headers=auth_headers)
    assert response["x-router-streaming"] == "passthrough"
    text = "".join(
        c["choices"][0]["delta"].get("content", "") for c in sse_events(response) if c["choices"]
    )
    assert text.startswith("[simulated")
    assert await drain_records() == 2


async def test_an_upstream_failure_mid_stream_sends_an_error_event_and_records_an_error():
    """After the first token nothing can be retried: the client gets an error event and
    [DONE], the upstream is closed, and the call is recorded as an error."""

    class Run:
        closed = False

        async def deltas(self):
            yield StreamDelta(text="Hel")
            raise ProviderOverloadedError("openai", None, "connection reset mid-stream")

        async def aclose(self):
            self.closed = True

        def result(self):
            return {"response": "Hel", "_routing_metadata": {}}

    recorded = []

    async def record(result, error):
        recorded.append((result, error))

    def error_body(err):
        return openai_error_body(*classify(err))

    run = Run()
    writer = ChunkWriter("chatcmpl-x", 0, "gpt-4.1-mini", False)
    chunks = [chunk async for chunk in relay_events(writer, run, record, error_body)]
    assert b'"role":"assistant"' in chunks[0] and b'"content":"Hel"' in chunks[0]
    assert b"connection reset mid-stream" in chunks[-1]
    assert chunks[-1].endswith(b"data: [DONE]\n\n")
    assert run.closed
    ((result, error),) = recorded
    assert result is None and isinstance(error, ProviderOverloadedError)
