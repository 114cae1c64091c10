"""The provider base classes: one place for HTTP, retries, timeouts and error translation.

`HTTPProvider.complete()` posts the vendor payload with the injected `httpx.AsyncClient`,
retries 429, 408, 5xx and Anthropic's 529 (and timeouts / connection errors; a malformed or
truncated 2xx body once) with jittered exponential backoff, honouring `Retry-After` / `retry-after-ms` up to a cap, and turns
every failure into a typed `ProviderError` raised `from` the transport error.
Vendors override: `url()`, `headers()`, `payload()`, `parse()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from routing_platform.engine.chat import FIELDS, ChatOptions, StreamDelta, tool_call_deltas
from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.errors import (
    ContextLengthError,
    MalformedResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotConfiguredError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)

# How OpenAI, Anthropic, Gemini and vLLM word a prompt that does not fit the context window.
_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens"
    r"|input token count.*exceeds",
    re.IGNORECASE,
)
_SECRET = re.compile(r"(sk-ant-[\w-]+|sk-[\w-]{8,}|AIza[\w-]{10,}|Bearer\s+\S+)")
_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _URL_USERINFO.sub(r"\1[redacted]@", text)
    return _SECRET.sub("[redacted]", text)


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: tuple[Mapping[str, str], ...]
    max_tokens: int | None = None
    temperature: float | None = None
    json_mode: bool = False
    logprobs: bool = False
    # The gateway's OpenAI-shaped messages and fields (tools, images, JSON schema, ...):
    # when set, providers build their payload from `options.messages`.
    options: ChatOptions | None = None
    # Not sent to real providers: the simulator uses them to act its part.
    tier: str = ""
    task_type: str = ""

    @property
    def system_text(self) -> str:
        return "\n\n".join(m["content"] for m in self.messages if m.get("role") == "system")

    @property
    def chat_messages(self) -> list[dict[str, str]]:
        return [
            {"role": m["role"], "content": m["content"]}
            for m in self.messages
            if m.get("role") != "system"
        ]


@dataclass(frozen=True)
class CompletionResponse:
    text: str
    model: str
    provider: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    # OpenAI-shaped tool calls ({"id", "type": "function", "function": {"name", "arguments"}})
    # and per-token logprobs (OpenAI's `logprobs.content`), when the provider returns them.
    tool_calls: tuple[dict[str, Any], ...] = ()
    token_logprobs: tuple[dict[str, Any], ...] | None = None


class Provider:
    """Anything that completes a `CompletionRequest`."""

    name = "provider"
    key_env = ""
    simulated = False
    # The `chat.FIELDS` this provider's translation honours.
    supports: frozenset[str] = frozenset(FIELDS)
    # Whether `stream()` relays the upstream's tokens as they arrive (else: one piece).
    streams = False

    def is_configured(self) -> bool:
        return True

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise NotImplementedError

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamDelta]:
        """The answer as deltas; by default the whole completion as one piece."""
        response = await self.complete(request)
        yield StreamDelta(
            text=response.text,
            tool_calls=tool_call_deltas(response.tool_calls),
            finish_reason=response.finish_reason,
            usage=response.usage,
            model=response.model,
            logprobs=response.token_logprobs,
        )

    async def aclose(self) -> None:
        return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class HTTPProvider(Provider):
    """A provider over HTTP. The client is injected (tests pass a local server or MockTransport)."""

    default_base_url = ""

    def __init__(
        self,
        *,
        api_key: str,
        client: httpx.AsyncClient,
        base_url: str = "",
        timeout_s: float = 60.0,
        max_retries: int = 2,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        retry_after_cap_s: float = 20.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.api_key = api_key
        self.client = client
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_cap_s = retry_after_cap_s
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter only; not security-relevant

    def __repr__(self) -> str:  # never show the key
        return f"<{type(self).__name__} {self.base_url}>"

    # -- hooks ---------------------------------------------------------------------------

    def is_configured(self) -> bool:
        return bool(self.api_key)

    def url(self, request: CompletionRequest) -> str:
        raise NotImplementedError

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        return {"content-type": "application/json"}

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        """Turn the decoded JSON body into a response; KeyError/TypeError mean malformed."""
        raise NotImplementedError

    def error_message(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            text = response.text.strip()
            return text[:300] or response.reason_phrase or "no message"
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = error.get("message") or error.get("type") or json.dumps(error)[:300]
        elif isinstance(error, str):
            message = error
        else:
            message = json.dumps(data)[:300]
        return str(message)[:300]

    # -- the call ------------------------------------------------------------------------

    def translate(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        message = redact(self.error_message(response), self.api_key)
        retry_after = parse_retry_after(response.headers)
        if status in (401, 403):
            return ProviderAuthError(self.name, status, message)
        if status == 429:
            return ProviderRateLimitError(self.name, status, message, retry_after_s=retry_after)
        if status == 408:
            return ProviderTimeoutError(self.name, status, message, retry_after_s=retry_after)
        if status >= 500:  # includes Anthropic's 529 "overloaded"
            return ProviderOverloadedError(self.name, status, message, retry_after_s=retry_after)
        if _CONTEXT_LENGTH.search(message) or _CONTEXT_LENGTH.search(response.text[:2000]):
            return ContextLengthError(self.name, status, message)
        return ProviderBadRequestError(self.name, status, message)

    def backoff_delay(self, attempt: int, error: ProviderError) -> float:
        if error.retry_after_s is not None:
            return min(self.retry_after_cap_s, error.retry_after_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return ceiling * (0.5 + 0.5 * self._rng.random())  # "equal jitter"

    def _transport_error(self, err: httpx.HTTPError) -> ProviderError:
        if isinstance(err, httpx.TimeoutException):
            return ProviderTimeoutError(
                self.name, None, f"no answer within {self.timeout_s:g}s ({type(err).__name__})"
            )
        return ProviderConnectionError(
            self.name, None, redact(f"cannot reach {self.base_url}: {err}", self.api_key)
        )

    async def _retry_or_raise(
        self, error: ProviderError, cause: BaseException, attempt: int
    ) -> None:
        """Raise ``error`` when it is final, else wait the backoff before the next attempt."""
        error.attempts = attempt  # type: ignore[attr-defined]
        if not error.retryable or attempt > self.max_retries:
            raise error from cause
        await self._sleep(self.backoff_delay(attempt - 1, error))

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        if not self.is_configured():
            raise ProviderNotConfiguredError(self.name, self.key_env)
        url = self.url(request)
        headers = self.headers(request)
        body = self.payload(request)
        started = time.perf_counter()
        # UpstreamClient's hot path (transport.py): a 2xx body without httpx's objects.
        post_answer = getattr(self.client, "post_answer", None)
        attempt = 0
        malformed_retried = False
        while True:
            attempt += 1
            try:
                if post_answer is None:
                    response = await self.client.post(
                        url, json=body, headers=headers, timeout=self.timeout_s
                    )
                else:
                    response = await post_answer(
                        url, json=body, headers=headers, timeout=self.timeout_s
                    )
                    if not isinstance(response, httpx.Response):
                        parsed = self._parse_answer(response, request, started, attempt)
                        if parsed is not None:
                            return parsed
                        response = response.response()
            except (httpx.TimeoutException, httpx.TransportError) as err:
                error, cause = self._transport_error(err), err
            else:
                if response.status_code < 400:
                    try:
                        return self._parse_success(response, request, started, attempt)
                    except MalformedResponseError as malformed:
                        # A truncated or garbled 200 (a proxy cut the body) is retried once.
                        if malformed_retried or attempt > self.max_retries:
                            raise
                        malformed_retried = True
                        await self._sleep(self.backoff_delay(attempt - 1, malformed))
                        continue
                error = self.translate(response)
                cause = httpx.HTTPStatusError(
                    f"{response.status_code}", request=response.request, response=response
                )
            await self._retry_or_raise(error, cause, attempt)

    # -- streaming -----------------------------------------------------------------------

    def stream_url(self, request: CompletionRequest) -> str:
        return self.url(request)

    def stream_payload(self, request: CompletionRequest) -> dict[str, Any]:
        return {**self.payload(request), "stream": True}

    def stream_events(self, data: Any, state: dict[str, Any]) -> Iterable[StreamDelta]:
        """The deltas of one decoded server-sent event; ``state`` lives for the stream."""
        raise NotImplementedError

    async def _open_stream(self, request: CompletionRequest) -> httpx.Response:
        """The upstream's streaming response once it answers 2xx (errors retried as in
        ``complete``: nothing has reached the caller yet)."""
        built = self.client.build_request(
            "POST",
            self.stream_url(request),
            json=self.stream_payload(request),
            headers={**self.headers(request), "accept": "text/event-stream"},
            timeout=self.timeout_s,
            extensions={STREAM_EXTENSION: True},
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.client.send(built, stream=True)
            except (httpx.TimeoutException, httpx.TransportError) as err:
                error, cause = self._transport_error(err), err
            else:
                if response.status_code < 400:
                    return response
                await response.aread()
                await response.aclose()
                error = self.translate(response)
                cause = httpx.HTTPStatusError(
                    f"{response.status_code}", request=response.request, response=response
                )
            await self._retry_or_raise(error, cause, attempt)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamDelta]:
        """The upstream's answer as it arrives, event by event (server-sent events)."""
        if not self.is_configured():
            raise ProviderNotConfiguredError(self.name, self.key_env)
        response = await self._open_stream(request)
        state: dict[str, Any] = {"model": request.model}
        try:
            async for data in sse_data(response):
                try:
                    deltas = list(self.stream_events(orjson.loads(data), state))
                except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
                    snippet = redact(data[:200].decode(errors="replace"), self.api_key)
                    raise MalformedResponseError(
                        self.name, response.status_code, f"unexpected stream event: {snippet!r}"
                    ) from err
                for delta in deltas:
                    yield delta
        except (httpx.TimeoutException, httpx.TransportError) as err:
            raise self._transport_error(err) from err
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await response.aclose()

    def _parse_answer(
        self, answer: Any, request: CompletionRequest, started: float, attempt: int
    ) -> CompletionResponse | None:
        """A 2xx ``UpstreamAnswer`` parsed from its bytes; None when orjson or ``parse``
        refuses it (then ``_parse_success`` on its ``httpx.Response`` says what is wrong)."""
        try:
            parsed = self.parse(orjson.loads(answer.content), request)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None
        return self._completion(parsed, request, started, attempt)

    def _parse_success(
        self, response: httpx.Response, request: CompletionRequest, started: float, attempt: int
    ) -> CompletionResponse:
        try:
            data = response_json(response)
            parsed = self.parse(data, request)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            snippet = redact(response.text[:200], self.api_key)
            error = MalformedResponseError(
                self.name,
                response.status_code,
                f"unexpected response body ({type(err).__name__}: {err}): {snippet!r}",
            )
            error.attempts = attempt  # type: ignore[attr-defined]
            raise error from err
        return self._completion(parsed, request, started, attempt)

    def _completion(
        self, parsed: CompletionResponse, request: CompletionRequest, started: float, attempt: int
    ) -> CompletionResponse:
        return CompletionResponse(
            text=parsed.text,
            model=parsed.model or request.model,
            provider=self.name,
            usage=parsed.usage,
            finish_reason=parsed.finish_reason,
            logprobs=parsed.logprobs,
            latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
            attempts=attempt,
            tool_calls=parsed.tool_calls,
            token_logprobs=parsed.token_logprobs,
        )


STREAM_EXTENSION = "router_stream"  # asks AiohttpTransport for a streamed body


async def sse_data(response: httpx.Response) -> AsyncIterator[bytes]:
    """The ``data:`` payloads of a server-sent event stream, up to ``[DONE]`` (read as
    bytes: cheaper per event than decoding lines of text)."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # event names, comments, keep-alives, blank separators
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            if data:
                yield data


def response_json(response: httpx.Response) -> Any:
    """``response.json()``, parsed by orjson (several times faster) when it can: a body orjson
    refuses (not UTF-8, NaN literals, invalid) gets httpx's own parse, with its result or
    its error. One difference: an integer beyond 64 bits comes back as a float (no field a
    provider reads is one: token counts are far smaller)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def as_int(value: Any) -> int:
    """A token count from a JSON field; missing -> 0, anything else must be a number."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"token count {value!r} is not a number")
    return int(value)


def float_tuple(values: Sequence[Any] | None) -> tuple[float, ...] | None:
    if not values:
        return None
    return tuple(float(v) for v in values)
