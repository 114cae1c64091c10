"""The gateway's fields through each provider, against a loopback server speaking its wire
format: tools, tool results, images, JSON schema, stop, seed; tool calls, finish reasons and
usage back; and streamed answers relayed event by event."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from routing_platform.engine.catalog import Catalog, ModelSpec
from routing_platform.engine.chat import (
    ChatOptions,
    StreamAccumulator,
    UnsupportedFieldError,
    check_supported,
)
from routing_platform.engine.config import RouterConfig
from routing_platform.engine.errors import ProviderRateLimitError
from routing_platform.engine.executor import Executor
from routing_platform.engine.providers.anthropic import AnthropicProvider
from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.providers.gemini import GeminiProvider
from routing_platform.engine.providers.openai import OpenAIProvider
from routing_platform.engine.providers.openai_compatible import OpenAICompatibleProvider
from routing_platform.engine.providers.pool import ProviderPool
from routing_platform.engine.providers.simulated import SimulatedProvider
from routing_platform.engine.providers.transport import upstream_client
from routing_platform.engine.router import ModelRouter
from tests.engine.upstream import Reply

KEY = "sk-test-0123456789abcdef"
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
TOOL_TURNS = (
    {"role": "system", "content": "Use tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
)
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
}

PROVIDERS = {
    "openai": (OpenAIProvider, "gpt-4.1-mini"),
    "anthropic": (AnthropicProvider, "claude-haiku-4-5"),
    "gemini": (GeminiProvider, "gemini-2.5-flash"),
}


@pytest.fixture(params=["httpx", "aiohttp"])
async def client(request):
    http = upstream_client(timeout_s=30.0) if request.param == "aiohttp" else httpx.AsyncClient()
    async with http:
        yield http


def make(name, upstream, client):
    cls, _ = PROVIDERS[name]
    return cls(api_key=KEY, client=client, base_url=upstream.url, max_retries=0)


def request(name, options, **kwargs):
    return CompletionRequest(
        model=PROVIDERS[name][1],
        messages=tuple(
            {"role": m["role"], "content": m.get("content") or ""} for m in options.messages
        ),
        options=options,
        **kwargs,
    )


TOOL_CALL_ANSWERS = {
    "openai": {
        "model": "gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [CALL]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 9},
    },
    "anthropic": {
        "model": "claude-haiku-4-5",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 30, "output_tokens": 9},
    },
    "gemini": {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9},
    },
}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_tool_calls_come_back_in_openai_shape(name, upstream, client):
    """A provider's tool call (tool_use block, functionCall part) is an OpenAI tool call
    with JSON arguments and finish_reason "tool_calls"."""
    upstream.script(Reply(200, TOOL_CALL_ANSWERS[name]))
    options = ChatOptions(messages=TOOL_TURNS[:2], tools=(WEATHER,), tool_choice="required")
    response = await make(name, upstream, client).complete(request(name, options))
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert call["id"]


async def test_anthropic_gets_input_schema_tools_and_tool_blocks(upstream, client):
    """Tools -> input_schema; the assistant's tool call -> tool_use; the tool's answer ->
    tool_result; system -> system; required -> any; parallel off; stop -> stop_sequences."""
    upstream.script(Reply(200, TOOL_CALL_ANSWERS["anthropic"]))
    options = ChatOptions(
        messages=TOOL_TURNS,
        tools=(WEATHER,),
        tool_choice="required",
        parallel_tool_calls=False,
        stop=("END",),
    )
    await make("anthropic", upstream, client).complete(request("anthropic", options))
    body = upstream.received[0].body
    assert body["system"] == "Use tools."
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city.",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["stop_sequences"] == ["END"]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"}
            ],
        },
    ]


async def test_gemini_gets_function_declarations_and_function_parts(upstream, client):
    """Tools -> functionDeclarations (schema keywords Gemini accepts); tool call ->
    functionCall; tool answer -> functionResponse by the call's name; seed and stop."""
    upstream.script(Reply(200, TOOL_CALL_ANSWERS["gemini"]))
    options = ChatOptions(
        messages=TOOL_TURNS, tools=(WEATHER,), tool_choice="auto", stop=("END",), seed=7
    )
    await make("gemini", upstream, client).complete(request("gemini", options))
    body = upstream.received[0].body
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert "additionalProperties" not in declaration["parameters"]
    assert declaration["parameters"]["required"] == ["city"]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"]["stopSequences"] == ["END"]
    assert body["generationConfig"]["seed"] == 7
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"content": "18C and sunny"}}}
        ],
    }


async def test_openai_gets_every_field_unchanged(upstream, client):
    upstream.script(Reply(200, TOOL_CALL_ANSWERS["openai"]))
    options = ChatOptions(
        messages=TOOL_TURNS,
        tools=(WEATHER,),
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        stop=("END",),
        seed=3,
        logprobs=True,
        top_logprobs=2,
    )
    await make("openai", upstream, client).complete(request("openai", options))
    body = upstream.received[0].body
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["stop"] == ["END"] and body["seed"] == 3 and body["top_logprobs"] == 2
    assert body["messages"][2]["tool_calls"] == [CALL]
    assert body["messages"][3] == TOOL_TURNS[3]


IMAGE_MESSAGES = (
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PNG}},
        ],
    },
)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_image_parts_reach_the_provider(name, upstream, client):
    """A data-URL image becomes an image block (Anthropic), inlineData (Gemini), or the
    image_url part itself (OpenAI)."""
    answers = {
        "openai": {
            "choices": [{"message": {"content": "A PNG."}, "finish_reason": "stop"}],
            "usage": {},
        },
        "anthropic": {
            "content": [{"type": "text", "text": "A PNG."}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
        "gemini": {
            "candidates": [{"content": {"parts": [{"text": "A PNG."}]}, "finishReason": "STOP"}],
            "usageMetadata": {},
        },
    }
    upstream.script(Reply(200, answers[name]))
    options = ChatOptions(messages=IMAGE_MESSAGES)
    response = await make(name, upstream, client).complete(request(name, options))
    assert response.text == "A PNG."
    body = upstream.received[0].body
    data = PNG.split(",", 1)[1]
    if name == "openai":
        assert body["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": PNG}}
    elif name == "anthropic":
        assert body["messages"][0]["content"][1] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": data},
        }
    else:
        assert body["contents"][0]["parts"][1] == {
            "inlineData": {"mimeType": "image/png", "data": data}
        }


async def test_anthropic_json_schema_is_a_forced_tool_whose_input_is_the_answer(upstream, client):
    upstream.script(
        Reply(
            200,
            {
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "json_response",
                        "input": {"name": "Paris"},
                    }
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 5, "output_tokens": 5},
            },
        )
    )
    options = ChatOptions(
        messages=({"role": "user", "content": "A city?"},), response_format=SCHEMA_FORMAT
    )
    response = await make("anthropic", upstream, client).complete(request("anthropic", options))
    body = upstream.received[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert body["tools"][0]["input_schema"] == SCHEMA_FORMAT["json_schema"]["schema"]
    assert json.loads(response.text) == {"name": "Paris"}
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"


async def test_gemini_json_schema_is_response_schema(upstream, client):
    upstream.script(
        Reply(
            200,
            {
                "candidates": [
                    {"content": {"parts": [{"text": '{"name": "Paris"}'}]}, "finishReason": "STOP"}
                ],
                "usageMetadata": {},
            },
        )
    )
    options = ChatOptions(
        messages=({"role": "user", "content": "A city?"},), response_format=SCHEMA_FORMAT
    )
    await make("gemini", upstream, client).complete(request("gemini", options))
    generation = upstream.received[0].body["generationConfig"]
    assert generation["responseMimeType"] == "application/json"
    assert generation["responseSchema"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }


@pytest.mark.parametrize(
    "name, answer, expected",
    [
        ("anthropic", "max_tokens", "length"),
        ("anthropic", "end_turn", "stop"),
        ("anthropic", "stop_sequence", "stop"),
        ("gemini", "MAX_TOKENS", "length"),
        ("gemini", "SAFETY", "content_filter"),
        ("gemini", "STOP", "stop"),
    ],
)
async def test_finish_reasons_are_mapped_to_openai_vocabulary(
    name, answer, expected, upstream, client
):
    if name == "anthropic":
        body = {
            "content": [{"type": "text", "text": "cut"}],
            "stop_reason": answer,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    else:
        body = {
            "candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": answer}],
            "usageMetadata": {},
        }
    upstream.script(Reply(200, body))
    options = ChatOptions(messages=({"role": "user", "content": "hi"},))
    response = await make(name, upstream, client).complete(request(name, options))
    assert response.finish_reason == expected


@pytest.mark.parametrize(
    "provider, options, field",
    [
        (AnthropicProvider, ChatOptions(seed=1), "seed"),
        (AnthropicProvider, ChatOptions(logprobs=True), "logprobs"),
        (GeminiProvider, ChatOptions(parallel_tool_calls=False), "parallel_tool_calls"),
        (
            GeminiProvider,
            ChatOptions(
                messages=(
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                        ],
                    },
                )
            ),
            "image_url.http",
        ),
        (OpenAICompatibleProvider, ChatOptions(messages=IMAGE_MESSAGES), "image_url"),
    ],
)
def test_a_field_the_provider_cannot_honour_is_refused_by_name(provider, options, field):
    with pytest.raises(UnsupportedFieldError) as caught:
        check_supported(options, provider.supports, "some-model")
    assert caught.value.param == field
    assert field in caught.value.message


# -- streaming ------------------------------------------------------------------------------

STREAMS = {
    "openai": [
        {"model": "gpt-4.1-mini", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Par"}}]},
        {"choices": [{"index": 0, "delta": {"content": "is."}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city"'},
                            }
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 4,
                "prompt_tokens_details": {"cached_tokens": 6},
            },
        },
        "[DONE]",
    ],
    "anthropic": [
        {
            "type": "message_start",
            "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 10}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "is."}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "call_1",
                "name": "get_weather",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city"'},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ': "Paris"}'},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 4},
        },
        {"type": "message_stop"},
    ],
    "gemini": [
        {
            "candidates": [{"content": {"parts": [{"text": "Par"}]}}],
            "modelVersion": "gemini-2.5-flash",
        },
        {"candidates": [{"content": {"parts": [{"text": "is."}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
                        ]
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4},
        },
    ],
}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_streams_relay_text_tool_calls_finish_and_usage(name, upstream, client):
    """Each vendor's event stream becomes deltas that add up to the answer."""
    upstream.script(Reply(200, events=STREAMS[name]))
    options = ChatOptions(messages=TOOL_TURNS[:2], tools=(WEATHER,))
    provider = make(name, upstream, client)
    accumulator = StreamAccumulator()
    async for delta in provider.stream(request(name, options)):
        accumulator.add(delta)
    assert accumulator.text == "Paris."
    (call,) = accumulator.tool_calls
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert accumulator.finish_reason == "tool_calls"
    assert accumulator.usage.output_tokens == 4
    assert accumulator.chunks >= 3
    sent = upstream.received[0]
    if name == "gemini":
        assert sent.path.endswith(":streamGenerateContent?alt=sse")
    else:
        assert sent.body["stream"] is True
    if name == "openai":
        assert sent.body["stream_options"] == {"include_usage": True}
        assert accumulator.usage.cache_read_tokens == 6


async def test_stream_error_status_is_a_provider_error(upstream, client):
    """An upstream that refuses the stream (429) raises before anything is relayed."""
    upstream.script(Reply(429, {"error": {"message": "slow down"}}))
    provider = make("openai", upstream, client)
    options = ChatOptions(messages=({"role": "user", "content": "hi"},))
    with pytest.raises(ProviderRateLimitError, match="slow down"):
        async for _ in provider.stream(request("openai", options)):
            pass


async def test_simulator_calls_tools_and_answers_json_schema():
    """The simulator plays tools and JSON too (for the offline demo), labelled simulated."""
    simulator = SimulatedProvider(seed=1)
    options = ChatOptions(messages=TOOL_TURNS[:2], tools=(WEATHER,))
    called = await simulator.complete(request("openai", options))
    assert called.finish_reason == "tool_calls"
    assert json.loads(called.tool_calls[0]["function"]["arguments"]) == {"city": "simulated"}
    answered = await simulator.complete(
        request("openai", ChatOptions(messages=TOOL_TURNS, tools=(WEATHER,)))
    )
    assert answered.tool_calls == () and "18C and sunny" in answered.text
    schema = ChatOptions(messages=TOOL_TURNS[:2], response_format=SCHEMA_FORMAT)
    shaped = await simulator.complete(request("openai", schema))
    assert json.loads(shaped.text) == {"name": "simulated"}
    assert shaped.provider == "simulated"


# -- capability-aware routing -----------------------------------------------------------------


def gateway_executor(upstream, client, catalog_specs, providers=("openai", "anthropic")):
    pool = ProviderPool(
        {name: make(name, upstream, client) for name in providers}, Catalog(catalog_specs)
    )
    return Executor(ModelRouter(RouterConfig(enable_escalation=False), pool=pool))


ANTHROPIC_TEXT = {
    "model": "claude-3-5-haiku-latest",
    "content": [{"type": "text", "text": "Fits here."}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 5, "output_tokens": 3},
}


async def test_context_length_error_falls_back_to_the_next_capable_model(upstream, client):
    """OpenAI says the prompt is too long: the router answers with the next model."""

    def responder(received, index):
        if received.path == "/chat/completions":
            return Reply(
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 1047576 tokens.",
                        "code": "context_length_exceeded",
                    }
                },
            )
        return Reply(200, ANTHROPIC_TEXT)

    upstream.responder = responder
    executor = gateway_executor(
        upstream,
        client,
        [
            ModelSpec("gpt-4.1-nano", "openai", "mini"),
            ModelSpec("claude-3-5-haiku-latest", "anthropic", "mini"),
            ModelSpec("gpt-4.1", "openai", "premium"),
        ],
    )
    result = await executor.execute(messages=[{"role": "user", "content": "hi"}])
    assert result["response"] == "Fits here."
    meta = result["_routing_metadata"]
    assert meta["models_tried"] == ["gpt-4.1-nano", "claude-3-5-haiku-latest"]
    assert "context length" in meta["attempts"][0]["error"]


async def test_router_skips_models_whose_window_or_fields_do_not_fit(upstream, client):
    """max_tokens beyond Claude's 200k window (genai-prices), or a seed (Anthropic has
    none): the router never calls an Anthropic model; a named one is a 400."""
    upstream.script(
        Reply(
            200, {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "usage": {}}
        )
    )
    executor = gateway_executor(
        upstream,
        client,
        [
            ModelSpec("claude-3-5-haiku-latest", "anthropic", "mini"),
            ModelSpec("gpt-4.1-nano", "openai", "mini"),
            ModelSpec("gpt-4.1", "openai", "premium"),
        ],
    )
    messages = [{"role": "user", "content": "hello there"}]  # about 2 tokens
    long = await executor.execute(messages=messages, max_tokens=200_000)
    seeded = await executor.execute(
        messages=messages, options=ChatOptions(messages=tuple(messages), seed=1)
    )
    assert long["model"] == seeded["model"] == "gpt-4.1-nano"
    assert all(r.path == "/chat/completions" for r in upstream.received)
    with pytest.raises(UnsupportedFieldError) as caught:
        await executor.execute(
            messages=messages, model="claude-3-5-haiku-latest", max_tokens=200_000
        )
    assert caught.value.param == "messages" and "200000-token context window" in str(caught.value)
