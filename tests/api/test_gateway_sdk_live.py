"""The official `openai` and `anthropic` SDKs against the platform served by uvicorn, whose
real provider clients talk to a loopback upstream on 127.0.0.1 speaking each vendor's wire
format: a two-step tool call, a JSON-schema answer, an image reaching a vision model,
finish_reason "length", streams whose first chunk arrives before the upstream has finished
(tokens 50 ms apart), a client disconnecting mid-stream, and an Anthropic-shaped request
answered by an OpenAI model."""

from __future__ import annotations

import base64
import json
import time

import anthropic
import httpx
import openai
import pytest
import redis

from api.recording import RECORDS_KEY
from tests.api.conftest import serve_platform
from tests.engine.upstream import Reply, Upstream

pytestmark = [pytest.mark.slow, pytest.mark.redis_server]

KEY = "sk-test-loopback-0123456789"
TOKENS = 40  # streamed 50 ms apart: the upstream needs about two seconds to finish
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


@pytest.fixture(scope="module")
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, real_redis_url, django_db_setup, django_db_blocker, upstream):
    overrides = {
        "ROUTER_PROVIDER_MODE": "real",
        "ROUTER_ENABLE_ESCALATION": "false",
        "ROUTER_MAX_RETRIES": "0",
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_API_KEY": KEY,
        "GEMINI_API_KEY": KEY,
        "OPENAI_BASE_URL": upstream.url,
        "ANTHROPIC_BASE_URL": upstream.url,
        "GEMINI_BASE_URL": upstream.url,
    }
    with serve_platform(
        tmp_path_factory,
        real_redis_url,
        django_db_setup,
        django_db_blocker,
        redis_db=2,
        overrides=overrides,
    ) as server:
        yield server


@pytest.fixture
def sdk(gateway):
    return openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=gateway.token, max_retries=0)


def openai_answer(message: dict, finish_reason: str = "stop") -> dict:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_two_step_tool_call_round_trip(sdk, upstream):
    """The model asks for a tool; the client runs it and sends the result; the model answers.
    Both requests reach the upstream with the tools and the tool turns intact."""
    call = {
        "id": "call_7",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    upstream.script(
        Reply(
            200,
            openai_answer(
                {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
            ),
        ),
        Reply(200, openai_answer({"role": "assistant", "content": "It is 18C in Paris."})),
    )
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = sdk.chat.completions.create(model="gpt-4.1-mini", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (tool_call,) = choice.message.tool_calls
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    assert first.usage.prompt_tokens_details.cached_tokens == 8
    assert first.usage.completion_tokens_details.reasoning_tokens == 2

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "18C"},
    ]
    second = sdk.chat.completions.create(model="gpt-4.1-mini", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 18C in Paris."
    assert second.choices[0].finish_reason == "stop"
    sent_first, sent_second = (r.body for r in upstream.received)
    assert sent_first["tools"] == [WEATHER]
    assert sent_second["messages"][1]["tool_calls"][0]["id"] == "call_7"
    assert sent_second["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_7",
        "content": "18C",
    }


def test_json_schema_answer_through_anthropic(sdk, upstream):
    """A json_schema response format on a Claude model: a forced tool upstream, whose input
    comes back as the message content."""
    upstream.script(
        Reply(
            200,
            {
                "model": "claude-haiku-4-5",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t",
                        "name": "json_response",
                        "input": {"city": "Paris"},
                    }
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 10, "output_tokens": 4},
            },
        )
    )
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    completion = sdk.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "A city?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "stop"
    sent = upstream.received[0]
    assert sent.path == "/v1/messages"
    assert sent.body["tools"][0]["input_schema"] == schema


def test_image_part_reaches_a_vision_model(sdk, upstream):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
    upstream.script(
        Reply(
            200,
            {
                "candidates": [
                    {"content": {"parts": [{"text": "A black square."}]}, "finishReason": "STOP"}
                ],
                "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 4},
            },
        )
    )
    completion = sdk.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "A black square."
    parts = upstream.received[0].body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}


def test_finish_reason_length_comes_back(sdk, upstream):
    upstream.script(
        Reply(
            200,
            {
                "content": [{"type": "text", "text": "Once upon"}],
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 10, "output_tokens": 2},
            },
        )
    )
    completion = sdk.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "A story"}], max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert upstream.received[0].body["max_tokens"] == 2


def token_events(count: int) -> list:
    events = [
        {"model": "gpt-4.1-mini", "choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}
        for i in range(count)
    ]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": count}})
    return [*events, "[DONE]"]


def test_first_chunk_arrives_before_the_upstream_has_finished(sdk, upstream):
    """Tokens 50 ms apart upstream: the SDK gets the first one while the upstream is still
    sending (the stream is relayed, not computed first)."""
    upstream.script(Reply(200, events=token_events(TOKENS), event_delay_s=0.05))
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "Count."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-router-streaming"] == "passthrough"
    text = []
    finished_at_first_token = None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            if finished_at_first_token is None:
                finished_at_first_token = upstream.streams_finished.is_set()
            text.append(chunk.choices[0].delta.content)
    assert finished_at_first_token is False
    assert "".join(text) == "".join(f"t{i} " for i in range(TOKENS))
    assert chunk.usage.completion_tokens == TOKENS


def wait_for_record(gateway, completion_id: str, timeout_s: float = 60.0) -> dict:
    """The call's record as the server handed it to Redis for the workers (or, once a
    worker has drained it, as the fields the workers wrote): either proves it was recorded."""
    connection = redis.Redis.from_url(gateway.env["REDIS_URL"])
    key = f"openai:{completion_id}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for raw in connection.lrange(RECORDS_KEY, 0, -1):
            payload = json.loads(raw)
            if payload.get("idempotency_key") == key:
                return payload
        rows = gateway.query(
            "SELECT result FROM experiments_routedcall WHERE idempotency_key = ?", (key,)
        )
        if rows:
            return {"result": json.loads(rows[0][0])}
        time.sleep(0.05)
    raise AssertionError(f"no record of {key} within {timeout_s:g}s")


def test_client_disconnect_mid_stream_is_recorded(gateway, upstream):
    """A client that goes away after the first chunk: the upstream stream is closed and
    the call is recorded with what arrived, marked client_disconnected."""
    upstream.script(Reply(200, events=token_events(TOKENS), event_delay_s=0.05))
    body = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Count slowly."}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {gateway.token}"}
    with httpx.stream(
        "POST", f"{gateway.base_url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content":"t0 "' in line:
                break
        completion_id = json.loads(line[len("data: ") :])["id"]
    record = wait_for_record(gateway, completion_id)
    assert record["result"]["_routing_metadata"]["stream"] == "client_disconnected"
    assert record["result"]["response"].startswith("t0 ")
    assert upstream.streams_finished.wait(timeout=10)
    assert upstream.streams_cut == 1


# -- the anthropic SDK on /v1/messages --------------------------------------------------------


@pytest.fixture
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=gateway.token, max_retries=0)


ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "input_schema": WEATHER["function"]["parameters"],
}


def test_anthropic_sdk_tool_round_trip_answered_by_an_openai_model(claude, upstream):
    """A request in Anthropic's shape, routed to an OpenAI model and back: tool_use out,
    tool_result in, and the upstream saw OpenAI's tool format both times."""
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    upstream.script(
        Reply(
            200,
            openai_answer(
                {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
            ),
        ),
        Reply(200, openai_answer({"role": "assistant", "content": "Oslo: 4C."})),
    )
    turns = [{"role": "user", "content": "Weather in Oslo?"}]
    first = claude.messages.create(
        model="gpt-4.1-mini", max_tokens=100, messages=turns, tools=[ANTHROPIC_WEATHER]
    )
    assert first.stop_reason == "tool_use"
    (tool_use,) = [block for block in first.content if block.type == "tool_use"]
    assert (tool_use.id, tool_use.name, tool_use.input) == (
        "call_9",
        "get_weather",
        {"city": "Oslo"},
    )
    assert first.usage.cache_read_input_tokens == 8 and first.usage.input_tokens == 12

    turns += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "4C"}],
        },
    ]
    second = claude.messages.create(
        model="gpt-4.1-mini", max_tokens=100, messages=turns, tools=[ANTHROPIC_WEATHER]
    )
    assert second.content[0].text == "Oslo: 4C."
    assert second.stop_reason == "end_turn"
    sent = upstream.received[1].body
    assert sent["tools"][0]["function"]["parameters"] == ANTHROPIC_WEATHER["input_schema"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_9"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_9", "content": "4C"}


def anthropic_token_events(count: int) -> list:
    events = [
        {
            "type": "message_start",
            "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 5}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": f"t{i} "},
        }
        for i in range(count)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": count},
        },
        {"type": "message_stop"},
    ]
    return events


def test_anthropic_sdk_stream_arrives_before_the_upstream_has_finished(claude, upstream):
    upstream.script(Reply(200, events=anthropic_token_events(TOKENS), event_delay_s=0.05))
    finished_at_first_text = None
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "Count."}]
    ) as stream:
        for text in stream.text_stream:
            if finished_at_first_text is None:
                finished_at_first_text = upstream.streams_finished.is_set()
        final = stream.get_final_message()
    assert finished_at_first_text is False
    assert final.content[0].text == "".join(f"t{i} " for i in range(TOKENS))
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == TOKENS
    assert upstream.received[0].body["stream"] is True
