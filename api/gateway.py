"""The OpenAI-compatible endpoint's translation: request fields in, answer shapes out.

`chat_options()` carries every field of the request to the engine (`engine.chat`), where
each provider translates it or the model is refused with a 400 naming the field.
`completion_body()` / `buffered_chunks()` / `relay_events()` shape the engine's
answer as OpenAI's chat.completion or chat.completion.chunk events: content, `tool_calls`,
the real `finish_reason`, `logprobs` (when asked for), and usage with cached and
reasoning tokens.

Streaming: a pass-through call (a named model), or a routed call without escalation,
relays the upstream's tokens as they arrive (`x-router-streaming: passthrough`); a routed
call with escalation on needs the whole weak answer to judge it, so it is computed first
and then sent as chunks (`x-router-streaming: buffered`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from api.errors import openai_error_body
from api.schemas import ChatCompletionIn
from routing_platform.engine.chat import ChatOptions, StreamDelta
from routing_platform.engine.outcome import CallOutcome

STREAM_CHUNK_CHARS = 48
IMAGE_PLACEHOLDER = "[image]"
STREAMING_HEADER = "x-router-streaming"


def chat_options(payload: ChatCompletionIn) -> ChatOptions:
    """The request's messages and fields beyond text, as the engine takes them."""
    stop = payload.stop
    return ChatOptions(
        messages=tuple(
            message.model_dump(exclude_none=True, by_alias=True) for message in payload.messages
        ),
        tools=tuple(tool.model_dump(exclude_none=True) for tool in payload.tools or ()),
        tool_choice=(
            payload.tool_choice
            if payload.tool_choice is None or isinstance(payload.tool_choice, str)
            else payload.tool_choice.model_dump()
        ),
        parallel_tool_calls=payload.parallel_tool_calls,
        response_format=(
            payload.response_format.model_dump(exclude_none=True, by_alias=True)
            if payload.response_format is not None
            else None
        ),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=payload.seed,
        logprobs=bool(payload.logprobs),
        top_logprobs=payload.top_logprobs,
    )


def flat_text(message: Any) -> str:
    """A message's text for routing and the record (images as a placeholder, tool calls
    by name)."""
    content = message.content
    if isinstance(content, list):
        text = "\n".join(getattr(part, "text", None) or IMAGE_PLACEHOLDER for part in content)
    else:
        text = content or ""
    calls = " ".join(f"[calls {call.function.name}]" for call in message.tool_calls or ())
    return f"{text} {calls}".strip() if calls else text


def flat_messages(payload: ChatCompletionIn) -> list[dict[str, str]]:
    """The messages as role and text (tool results as user turns) for the engine's router."""
    roles = {"tool": "user", "function": "user"}
    return [
        {"role": roles.get(message.role, message.role), "content": flat_text(message)}
        for message in payload.messages
    ]


def usage_body(result: dict[str, Any]) -> dict[str, Any]:
    outcome = CallOutcome.from_result(result)
    return {
        "prompt_tokens": outcome.input_tokens,
        "completion_tokens": outcome.output_tokens,
        "total_tokens": outcome.input_tokens + outcome.output_tokens,
        "prompt_tokens_details": {"cached_tokens": outcome.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": outcome.reasoning_tokens},
    }


def _logprobs(result: dict[str, Any], wanted: bool) -> dict[str, Any] | None:
    tokens = result.get("logprobs")
    return {"content": tokens, "refusal": None} if wanted and tokens else None


def completion_body(
    payload: ChatCompletionIn, completion_id: str, created: int, result: dict[str, Any]
) -> dict[str, Any]:
    tool_calls = result.get("tool_calls") or []
    text = result.get("response") or ""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.get("model") or "",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": result.get("finish_reason") or "stop",
                "logprobs": _logprobs(result, bool(payload.logprobs)),
            }
        ],
        "usage": usage_body(result),
        "system_fingerprint": None,
    }


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


DONE = b"data: [DONE]\n\n"


class ChunkWriter:
    """chat.completion.chunk events of one completion."""

    def __init__(self, completion_id: str, created: int, model: str, logprobs: bool) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self.logprobs = logprobs

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse(
            {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    def role(self) -> bytes:
        return self.delta({"role": "assistant", "content": ""})

    def delta(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: Any = None,
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if self.logprobs and logprobs:
            choice["logprobs"] = {"content": list(logprobs), "refusal": None}
        return self.chunk([choice])

    def start(self) -> list[bytes]:
        return [self.role()]

    def of(self, piece: StreamDelta) -> list[bytes]:
        """One engine delta as a chunk (none when it carries nothing for the client)."""
        delta: dict[str, Any] = {}
        if piece.text:
            delta["content"] = piece.text
        if piece.tool_calls:
            delta["tool_calls"] = [
                {key: value for key, value in call.items() if value is not None}
                for call in piece.tool_calls
            ]
        if not delta and not piece.finish_reason and not piece.logprobs:
            return []
        return [self.delta(delta, piece.finish_reason, piece.logprobs)]

    def usage(self, result: dict[str, Any]) -> bytes:
        return self.chunk([], usage=usage_body(result))

    def finish(self, result: dict[str, Any]) -> list[bytes]:
        return [self.usage(result), DONE]

    @staticmethod
    def error(body: dict[str, Any]) -> list[bytes]:
        return [sse(body), DONE]


async def buffered_chunks(writer: ChunkWriter, result: dict[str, Any]) -> AsyncIterator[bytes]:
    """A computed answer as chunks: role, text pieces, tool calls, finish, usage, [DONE]."""
    yield writer.role()
    text = result.get("response") or ""
    for start in range(0, len(text), STREAM_CHUNK_CHARS):
        yield writer.delta({"content": text[start : start + STREAM_CHUNK_CHARS]})
    tool_calls = result.get("tool_calls") or []
    if tool_calls:
        yield writer.delta(
            {"tool_calls": [{"index": i, **call} for i, call in enumerate(tool_calls)]}
        )
    yield writer.delta({}, result.get("finish_reason") or "stop", result.get("logprobs"))
    yield writer.usage(result)
    yield DONE


async def relay_events(
    writer: Any,
    run: Any,
    record: Callable[[dict[str, Any] | None, Exception | None], Awaitable[None]],
    error_body: Callable[[Exception], dict[str, Any]],
) -> AsyncIterator[bytes]:
    """The upstream's deltas relayed as they arrive, as ``writer`` shapes them (its
    ``start()``, ``of(delta)``, ``finish(result)`` and ``error(body)`` give the events).
    The call is recorded when the stream ends: completed, failed upstream (an error event
    is sent), or cut short by the client (the upstream is closed and what arrived is
    recorded, marked so)."""
    outcome = "client_disconnected"
    error: Exception | None = None
    result: dict[str, Any] | None = None
    # Each delta's events go out in one write (the opening events with the first delta's):
    # a write per event would cost the server a send each.
    pending = b"".join(writer.start())
    try:
        async for piece in run.deltas():
            data, pending = pending + b"".join(writer.of(piece)), b""
            if data:
                yield data
        outcome, result = "completed", run.result()
        yield pending + b"".join(writer.finish(result))
    except Exception as err:  # an upstream failure after the first token
        outcome, error = "upstream_error", err
        yield pending + b"".join(writer.error(error_body(err)))
    finally:
        await run.aclose()
        if error is not None:
            await record(result=None, error=error)
        else:
            result = result or run.result()  # what arrived before the client left
            result["_routing_metadata"]["stream"] = outcome
            await record(result=result, error=None)


class OpenAIRenderer:
    """The answer in OpenAI's shapes (chat.completion, chat.completion.chunk events)."""

    record_prefix = "openai"
    error_body = staticmethod(openai_error_body)

    def __init__(self, payload: ChatCompletionIn) -> None:
        self.payload = payload

    def body(self, completion_id: str, created: int, result: dict[str, Any]) -> bytes:
        body = completion_body(self.payload, completion_id, created, result)
        return json.dumps(body, separators=(",", ":")).encode()

    def _writer(self, completion_id: str, created: int, model: str) -> ChunkWriter:
        return ChunkWriter(completion_id, created, model, bool(self.payload.logprobs))

    def buffered(
        self, completion_id: str, created: int, result: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        writer = self._writer(completion_id, created, result.get("model") or "")
        return buffered_chunks(writer, result)

    def relay(
        self,
        completion_id: str,
        created: int,
        run: Any,
        record: Callable[[dict[str, Any] | None, Exception | None], Awaitable[None]],
        error_body: Callable[[Exception], dict[str, Any]],
    ) -> AsyncIterator[bytes]:
        writer = self._writer(completion_id, created, run.spec.name)
        return relay_events(writer, run, record, error_body)
