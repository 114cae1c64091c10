"""Each provider against a real HTTP server on 127.0.0.1 speaking its wire format."""

from __future__ import annotations

import json

import httpx
import pytest

from routing_platform.engine.errors import (
    MalformedResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderNotConfiguredError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)
from routing_platform.engine.providers.anthropic import AnthropicProvider
from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.providers.gemini import GeminiProvider
from routing_platform.engine.providers.openai import OpenAIProvider
from routing_platform.engine.providers.openai_compatible import OpenAICompatibleProvider
from routing_platform.engine.providers.transport import upstream_client
from tests.engine.upstream import Reply

KEY = "sk-test-0123456789abcdef"

OPENAI_OK = {
    "id": "chatcmpl-1",
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris."},
            "finish_reason": "stop",
            "logprobs": {
                "content": [{"token": "Paris", "logprob": -0.01}, {"token": ".", "logprob": -0.03}]
            },
        }
    ],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    },
}
ANTHROPIC_OK = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "Paris."}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 20,
        "output_tokens": 40,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
    },
}
GEMINI_OK = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "Paris."}]},
            "finishReason": "STOP",
            "avgLogprobs": -0.05,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 120,
        "candidatesTokenCount": 28,
        "thoughtsTokenCount": 12,
        "cachedContentTokenCount": 100,
    },
    "modelVersion": "gemini-2.5-flash",
}

ERRORS = {
    "openai": lambda message, kind: {"error": {"message": message, "type": kind}},
    "openai_compatible": lambda message, kind: {"error": {"message": message, "type": kind}},
    "anthropic": lambda message, kind: {
        "type": "error",
        "error": {"type": kind, "message": message},
    },
    "gemini": lambda message, kind: {"error": {"code": 400, "message": message, "status": kind}},
}

CASES = {
    "openai": (OpenAIProvider, OPENAI_OK, "gpt-4.1-mini", "/chat/completions"),
    "openai_compatible": (OpenAICompatibleProvider, OPENAI_OK, "llama3:8b", "/chat/completions"),
    "anthropic": (AnthropicProvider, ANTHROPIC_OK, "claude-haiku-4-5", "/v1/messages"),
    "gemini": (
        GeminiProvider,
        GEMINI_OK,
        "gemini-2.5-flash",
        "/models/gemini-2.5-flash:generateContent",
    ),
}
PROVIDERS = list(CASES)


def make(name, upstream, client, sleep, *, timeout_s=5.0, max_retries=2, api_key=KEY):
    cls = CASES[name][0]
    return cls(
        api_key=api_key,
        client=client,
        base_url=upstream.url,
        timeout_s=timeout_s,
        max_retries=max_retries,
        sleep=sleep,
    )


def request_for(name, **kwargs):
    return CompletionRequest(
        model=CASES[name][2],
        messages=(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ),
        max_tokens=50,
        temperature=0.2,
        **kwargs,
    )


@pytest.fixture(params=["httpx", "aiohttp"])
async def client(request):
    """Every provider test runs on httpx's own transport and on the server's aiohttp one."""
    http = upstream_client(timeout_s=60.0) if request.param == "aiohttp" else httpx.AsyncClient()
    async with http:
        yield http


@pytest.mark.parametrize("name", PROVIDERS)
async def test_success_parses_text_usage_and_sends_the_vendor_request(
    name, upstream, client, recording_sleep
):
    """A 200 gives text and normalised usage; the request has the vendor's path, auth and payload."""
    upstream.script(Reply(200, CASES[name][1]))
    provider = make(name, upstream, client, recording_sleep)
    response = await provider.complete(request_for(name, logprobs=True))

    assert response.text == "Paris."
    assert response.provider == name
    assert response.attempts == 1
    assert response.usage.input_tokens == 120  # cached tokens counted in, every vendor
    assert response.usage.output_tokens == 40
    assert response.usage.cache_read_tokens == 100
    assert recording_sleep.delays == []

    (sent,) = upstream.received
    assert sent.path == CASES[name][3]
    body = sent.body
    if name in ("openai", "openai_compatible"):
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert body["model"] == CASES[name][2]
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["messages"][1] == {"role": "user", "content": "Capital of France?"}
        assert body["temperature"] == 0.2
        if name == "openai":
            assert body["max_completion_tokens"] == 50
            assert body["logprobs"] is True
            assert response.logprobs == (-0.01, -0.03)
            assert response.usage.reasoning_tokens == 12
        else:
            assert body["max_tokens"] == 50
            assert "logprobs" not in body
    elif name == "anthropic":
        assert sent.headers["x-api-key"] == KEY
        assert sent.headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in sent.headers
        assert body == {
            "model": "claude-haiku-4-5",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "system": "Be brief.",
            "temperature": 0.2,
        }
        assert response.finish_reason == "stop"  # Anthropic's end_turn, in OpenAI's vocabulary
        assert response.logprobs is None
    else:
        assert sent.headers["x-goog-api-key"] == KEY
        assert "key=" not in sent.path  # never the key in the URL
        assert body["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
        assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2}
        assert response.usage.reasoning_tokens == 12
        assert response.logprobs == (-0.05,)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_json_mode_asks_the_vendor_for_json(name, upstream, client, recording_sleep):
    """json_mode maps to response_format / responseMimeType where the vendor has one."""
    upstream.script(Reply(200, CASES[name][1]))
    provider = make(name, upstream, client, recording_sleep)
    await provider.complete(request_for(name, json_mode=True))
    body = upstream.received[0].body
    if name in ("openai", "openai_compatible"):
        assert body["response_format"] == {"type": "json_object"}
    elif name == "gemini":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
    else:
        assert "response_format" not in body  # Anthropic: the prompt asks for JSON


@pytest.mark.parametrize("name", PROVIDERS)
async def test_400_is_a_bad_request_error_without_retry(name, upstream, client, recording_sleep):
    """A 400 is the request's fault: one attempt, ProviderBadRequestError with the message."""
    upstream.script(Reply(400, ERRORS[name]("max_tokens is too large", "invalid_request_error")))
    provider = make(name, upstream, client, recording_sleep)
    with pytest.raises(ProviderBadRequestError) as info:
        await provider.complete(request_for(name))
    err = info.value
    assert err.provider == name
    assert err.status_code == 400
    assert "max_tokens is too large" in str(err)
    assert isinstance(err.__cause__, httpx.HTTPStatusError)
    assert len(upstream.received) == 1
    assert recording_sleep.delays == []


@pytest.mark.parametrize("name", PROVIDERS)
async def test_401_is_an_auth_error_and_never_shows_the_key(
    name, upstream, client, recording_sleep
):
    """A 401 is ProviderAuthError, not retried; a key echoed by the vendor is redacted."""
    upstream.script(
        Reply(401, ERRORS[name](f"Incorrect API key provided: {KEY}", "authentication_error"))
    )
    provider = make(name, upstream, client, recording_sleep)
    with pytest.raises(ProviderAuthError) as info:
        await provider.complete(request_for(name))
    assert info.value.status_code == 401
    assert KEY not in str(info.value)
    assert "[redacted]" in str(info.value)
    assert len(upstream.received) == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_429_honours_retry_after_then_succeeds(name, upstream, client, recording_sleep):
    """A 429 with Retry-After waits that long (capped) and retries; the next 200 wins."""
    upstream.script(
        Reply(429, ERRORS[name]("rate limited", "rate_limit_error"), headers={"retry-after": "3"}),
        Reply(200, CASES[name][1]),
    )
    provider = make(name, upstream, client, recording_sleep)
    response = await provider.complete(request_for(name))
    assert response.text == "Paris."
    assert response.attempts == 2
    assert recording_sleep.delays == [3.0]
    assert len(upstream.received) == 2
    assert upstream.received[0].body == upstream.received[1].body  # the same request again


async def test_retry_after_is_capped(upstream, client, recording_sleep):
    """A huge Retry-After is capped so one call cannot hang for minutes."""
    upstream.script(
        Reply(429, ERRORS["openai"]("slow down", "rate_limit"), headers={"retry-after": "3600"}),
        Reply(200, OPENAI_OK),
    )
    provider = OpenAIProvider(
        api_key=KEY,
        client=client,
        base_url=upstream.url,
        retry_after_cap_s=7.5,
        sleep=recording_sleep,
    )
    await provider.complete(request_for("openai"))
    assert recording_sleep.delays == [7.5]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_429_exhausting_retries_is_a_rate_limit_error(
    name, upstream, client, recording_sleep
):
    """Still 429 after max_retries: ProviderRateLimitError with the attempt count."""
    upstream.script(
        Reply(429, ERRORS[name]("rate limited", "rate_limit_error"), headers={"retry-after": "1"})
    )
    provider = make(name, upstream, client, recording_sleep, max_retries=2)
    with pytest.raises(ProviderRateLimitError) as info:
        await provider.complete(request_for(name))
    assert info.value.status_code == 429
    assert info.value.attempts == 3
    assert info.value.retry_after_s == 1.0
    assert len(upstream.received) == 3


@pytest.mark.parametrize("name", PROVIDERS)
async def test_500_retries_with_jittered_exponential_backoff(
    name, upstream, client, recording_sleep
):
    """A 500 is retried with growing, jittered delays, then surfaces as ProviderOverloadedError."""
    upstream.script(Reply(500, ERRORS[name]("internal error", "server_error")))
    provider = make(name, upstream, client, recording_sleep, max_retries=3)
    with pytest.raises(ProviderOverloadedError) as info:
        await provider.complete(request_for(name))
    assert info.value.status_code == 500
    assert info.value.retryable
    assert len(upstream.received) == 4
    delays = recording_sleep.delays
    assert len(delays) == 3
    # Equal jitter: attempt n waits in [base*2^n/2, base*2^n] with base 0.5 s.
    for attempt, delay in enumerate(delays):
        ceiling = 0.5 * 2**attempt
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize("name", PROVIDERS)
async def test_529_overloaded_is_retried(name, upstream, client, recording_sleep):
    """Anthropic's 529 "overloaded" (and anyone's) is retried, then succeeds."""
    upstream.script(
        Reply(529, ERRORS[name]("Overloaded", "overloaded_error")),
        Reply(200, CASES[name][1]),
    )
    provider = make(name, upstream, client, recording_sleep)
    response = await provider.complete(request_for(name))
    assert response.attempts == 2
    assert len(recording_sleep.delays) == 1


async def test_529_exhausted_is_a_typed_overloaded_error(upstream, client, recording_sleep):
    """529 on every attempt: ProviderOverloadedError with status 529 and the vendor message."""
    upstream.script(Reply(529, ERRORS["anthropic"]("Overloaded", "overloaded_error")))
    provider = make("anthropic", upstream, client, recording_sleep, max_retries=1)
    with pytest.raises(ProviderOverloadedError) as info:
        await provider.complete(request_for("anthropic"))
    assert info.value.status_code == 529
    assert "Overloaded" in str(info.value)
    assert len(upstream.received) == 2


@pytest.mark.parametrize("name", PROVIDERS)
async def test_timeout_is_retried_then_a_timeout_error(name, upstream, client, recording_sleep):
    """No answer within the per-call timeout: retried, then ProviderTimeoutError from httpx's."""
    upstream.script(Reply(200, CASES[name][1], delay_s=0.6))
    provider = make(name, upstream, client, recording_sleep, timeout_s=0.15, max_retries=1)
    with pytest.raises(ProviderTimeoutError) as info:
        await provider.complete(request_for(name))
    assert info.value.status_code is None
    assert info.value.attempts == 2
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert len(recording_sleep.delays) == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_malformed_body_is_a_malformed_response_error(
    name, upstream, client, recording_sleep
):
    """A 200 whose body is not the vendor's shape is MalformedResponseError after one retry
    (not the full retry budget: a body that stays wrong is not transient)."""
    upstream.script(Reply(200, "<html>gateway says hi</html>"))
    provider = make(name, upstream, client, recording_sleep)
    with pytest.raises(MalformedResponseError) as info:
        await provider.complete(request_for(name))
    assert info.value.provider == name
    assert "gateway says hi" in str(info.value)
    assert info.value.__cause__ is not None
    assert len(upstream.received) == 2
    assert info.value.attempts == 2


@pytest.mark.parametrize("name", PROVIDERS)
async def test_truncated_200_is_retried_once_then_succeeds(name, upstream, client, recording_sleep):
    """A 200 cut off mid-body (malformed JSON) is retried once, like a 500 or a timeout."""
    whole = json.dumps(CASES[name][1])
    upstream.script(Reply(200, whole[: len(whole) // 2]), Reply(200, CASES[name][1]))
    provider = make(name, upstream, client, recording_sleep)
    answer = await provider.complete(request_for(name))
    assert answer.attempts == 2
    assert answer.text
    assert len(upstream.received) == 2
    assert len(recording_sleep.delays) == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_wrong_json_shape_is_malformed(name, upstream, client, recording_sleep):
    """Valid JSON with missing fields is malformed too."""
    upstream.script(Reply(200, {"unexpected": True}))
    provider = make(name, upstream, client, recording_sleep)
    with pytest.raises(MalformedResponseError):
        await provider.complete(request_for(name))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("openai", "OPENAI_API_KEY environment variable not set"),
        ("anthropic", "ANTHROPIC_API_KEY environment variable not set"),
        ("gemini", "GEMINI_API_KEY environment variable not set"),
    ],
)
async def test_missing_key_gives_the_error_users_know(
    name, message, upstream, client, recording_sleep
):
    """No key: the familiar message, and no request leaves the process."""
    provider = make(name, upstream, client, recording_sleep, api_key="")
    with pytest.raises(ProviderNotConfiguredError) as info:
        await provider.complete(request_for(name))
    assert str(info.value) == message
    assert isinstance(info.value, ProviderError)
    assert upstream.received == []


async def test_openai_compatible_needs_no_key(upstream, client, recording_sleep):
    """A local vLLM/Ollama server without auth: no Authorization header is sent."""
    upstream.script(Reply(200, OPENAI_OK))
    provider = make("openai_compatible", upstream, client, recording_sleep, api_key="")
    response = await provider.complete(request_for("openai_compatible"))
    assert response.text == "Paris."
    assert "authorization" not in upstream.received[0].headers


async def test_connection_refused_is_a_retryable_connection_error(client, recording_sleep):
    """Nothing listening: ProviderConnectionError after the retries."""
    from routing_platform.engine.errors import ProviderConnectionError

    provider = OpenAIProvider(
        api_key=KEY,
        client=client,
        base_url="http://127.0.0.1:9",
        max_retries=1,
        sleep=recording_sleep,
    )
    with pytest.raises(ProviderConnectionError) as info:
        await provider.complete(request_for("openai"))
    assert info.value.attempts == 2


async def test_gemini_blocked_prompt_is_a_bad_request(upstream, client, recording_sleep):
    """Gemini answers 200 with no candidates when it blocks a prompt: a typed error says why."""
    upstream.script(Reply(200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}}))
    provider = make("gemini", upstream, client, recording_sleep)
    with pytest.raises(ProviderBadRequestError, match="SAFETY"):
        await provider.complete(request_for("gemini"))


async def test_connection_errors_never_show_credentials_in_the_base_url(client, recording_sleep):
    """A base URL with user:password@ is redacted in the error message."""
    from routing_platform.engine.errors import ProviderConnectionError

    provider = OpenAICompatibleProvider(
        api_key="",
        client=client,
        base_url="http://admin:hunter2@127.0.0.1:9/v1",
        max_retries=0,
        sleep=recording_sleep,
    )
    with pytest.raises(ProviderConnectionError) as info:
        await provider.complete(request_for("openai_compatible"))
    assert "hunter2" not in str(info.value)
