"""Anthropic's Messages shapes and their translation to and from the gateway's OpenAI shape.

In: `MessagesIn` (system, messages of text / image / tool_use / tool_result blocks, tools
with `input_schema`, `tool_choice`, `stop_sequences`, `max_tokens`, `temperature`,
`top_p`, `metadata.user_id`, `stream`) -> `chat_request()`: a `ChatCompletionIn`, which is
validated by the same schema (so a bad tool schema or image is the same 400). Fields the
gateway cannot carry to every provider (`top_k`, `thinking`) are refused by name.

Out: `MessagesRenderer` answers in Anthropic's shapes: a `message` (text and `tool_use`
blocks, `stop_reason` end_turn / max_tokens / tool_use / refusal, usage with cache
reads), or its event stream (message_start, content_block_start / _delta / _stop,
message_delta, message_stop).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import pydantic
from ninja import Schema
from ninja.errors import ValidationError
from pydantic import ConfigDict, Field, field_validator

from api.errors import ApiError
from api.gateway import relay_events
from api.schemas import TEXT_MAX_CHARS, ChatCompletionIn
from routing_platform.engine.chat import StreamDelta
from routing_platform.engine.outcome import CallOutcome

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


# -- request --------------------------------------------------------------------------------


class TextBlock(Schema):
    type: Literal["text"]
    text: str = Field(..., max_length=TEXT_MAX_CHARS)


class Base64Source(Schema):
    type: Literal["base64"]
    media_type: str = Field(..., max_length=64)
    data: str


class UrlSource(Schema):
    type: Literal["url"]
    url: str = Field(..., min_length=1)


class ImageBlock(Schema):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]


class ToolUseBlock(Schema):
    type: Literal["tool_use"]
    id: str = Field(..., min_length=1, max_length=256)
    name: str = Field(..., min_length=1, max_length=64)
    input: dict[str, Any]


class ToolResultBlock(Schema):
    type: Literal["tool_result"]
    tool_use_id: str = Field(..., min_length=1, max_length=256)
    content: str | list[TextBlock] = ""
    is_error: bool | None = None


Block = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")
]


class MessageIn(Schema):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolIn(Schema):
    model_config = ConfigDict(extra="allow")

    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = Field(None, max_length=10_000)
    input_schema: dict[str, Any]


class ToolChoiceIn(Schema):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(None, max_length=64)
    disable_parallel_tool_use: bool | None = None


class MetadataIn(Schema):
    user_id: str | None = Field(None, max_length=255)


class MessagesIn(Schema):
    """Anthropic's Messages request; unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1, max_length=200)
    max_tokens: int = Field(..., ge=1, le=200_000)
    messages: list[MessageIn] = Field(..., min_length=1, max_length=2_000)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = Field(None, max_length=4)
    stream: bool | None = False
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, description="Not supported: refused with a 400.")
    thinking: dict[str, Any] | None = Field(None, description="Not supported: a 400.")
    tools: list[ToolIn] | None = Field(None, max_length=128)
    tool_choice: ToolChoiceIn | None = None
    metadata: MetadataIn | None = None

    @field_validator("top_k", "thinking")
    @classmethod
    def not_supported(cls, value: Any):
        if value is not None:
            raise ValueError("not supported by this gateway (it routes to any provider): drop it")
        return value


def _text(content: str | list[TextBlock]) -> str:
    return content if isinstance(content, str) else "\n".join(block.text for block in content)


def _image_part(block: ImageBlock) -> dict[str, Any]:
    source = block.source
    url = (
        source.url
        if isinstance(source, UrlSource)
        else (f"data:{source.media_type};base64,{source.data}")
    )
    return {"type": "image_url", "image_url": {"url": url}}


def _openai_messages(message: MessageIn) -> list[dict[str, Any]]:
    """One Anthropic turn as OpenAI messages: tool results become tool messages (first),
    tool_use blocks the assistant's tool_calls, text and images content parts."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            out.append(
                {"role": "tool", "tool_call_id": block.tool_use_id, "content": _text(block.content)}
            )
        elif isinstance(block, ToolUseBlock):
            calls.append(
                {
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": json.dumps(block.input)},
                }
            )
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        else:
            parts.append({"type": "text", "text": block.text})
    if parts or calls:
        turn: dict[str, Any] = {"role": message.role, "content": parts or None}
        if calls:
            turn["tool_calls"] = calls
        out.append(turn)
    return out


def _tool_choice(choice: ToolChoiceIn | None) -> Any:
    if choice is None:
        return None
    if choice.type == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def chat_request(payload: MessagesIn) -> ChatCompletionIn:
    """The Messages request as the gateway's chat completion request (validated by it)."""
    messages: list[dict[str, Any]] = []
    if payload.system:
        messages.append({"role": "system", "content": _text(payload.system)})
    for message in payload.messages:
        messages.extend(_openai_messages(message))
    body: dict[str, Any] = {
        "model": payload.model,
        "messages": messages,
        "max_tokens": payload.max_tokens,
        "stream": bool(payload.stream),
        "temperature": payload.temperature,
        "top_p": payload.top_p,
        "stop": payload.stop_sequences,
        "user": payload.metadata.user_id if payload.metadata else None,
        "tool_choice": _tool_choice(payload.tool_choice),
    }
    if payload.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                },
            }
            for tool in payload.tools
        ]
    if payload.tool_choice is not None and payload.tool_choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False
    try:
        return ChatCompletionIn.model_validate(
            {key: value for key, value in body.items() if value is not None}
        )
    except pydantic.ValidationError as err:  # named as the gateway's fields
        raise ValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in err.errors()]
        ) from None


# -- answer ---------------------------------------------------------------------------------


def anthropic_error_body(err: ApiError, details: list | None) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(err.status_code, "api_error"), "message": err.message},
    }


def _usage(result: dict[str, Any]) -> dict[str, int]:
    outcome = CallOutcome.from_result(result)
    return {
        "input_tokens": max(0, outcome.input_tokens - outcome.cached_tokens),
        "output_tokens": outcome.output_tokens,
        "cache_read_input_tokens": outcome.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": function["name"],
        "input": json.loads(function.get("arguments") or "{}"),
    }


def _message_id(completion_id: str) -> str:
    return "msg_" + completion_id.removeprefix("chatcmpl-")


def message_body(completion_id: str, result: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if result.get("response"):
        content.append({"type": "text", "text": result["response"]})
    content += [_tool_use(call) for call in result.get("tool_calls") or ()]
    return {
        "id": _message_id(completion_id),
        "type": "message",
        "role": "assistant",
        "model": result.get("model") or "",
        "content": content,
        "stop_reason": STOP_REASONS.get(result.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(result),
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventWriter:
    """A message's event stream from the gateway's deltas: one content block at a time."""

    def __init__(self, completion_id: str, model: str) -> None:
        self.completion_id = completion_id
        self.model = model
        self.block = -1  # index of the open content block
        self.kind = ""  # "text" or "tool_use:<tool index>"

    @staticmethod
    def error(body: dict[str, Any]) -> list[bytes]:
        return [event("error", body)]

    def start(self) -> list[bytes]:
        message = {
            "id": _message_id(self.completion_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [event("message_start", {"type": "message_start", "message": message})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self.block += 1
        self.kind = kind
        events.append(
            event(
                "content_block_start",
                {"type": "content_block_start", "index": self.block, "content_block": block},
            )
        )
        return events

    def _close(self) -> list[bytes]:
        if not self.kind:
            return []
        self.kind = ""
        return [event("content_block_stop", {"type": "content_block_stop", "index": self.block})]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.block, "delta": delta},
        )

    def of(self, piece: StreamDelta) -> list[bytes]:
        events: list[bytes] = []
        if piece.text:
            if self.kind != "text":
                events += self._open("text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": piece.text}))
        for call in piece.tool_calls:
            kind = f"tool_use:{call.get('index', 0)}"
            function = call.get("function") or {}
            if self.kind != kind:
                block = {
                    "type": "tool_use",
                    "id": call.get("id") or "",
                    "name": function.get("name") or "",
                    "input": {},
                }
                events += self._open(kind, block)
            if function.get("arguments"):
                events.append(
                    self._delta({"type": "input_json_delta", "partial_json": function["arguments"]})
                )
        return events

    def finish(self, result: dict[str, Any]) -> list[bytes]:
        usage = _usage(result)
        stop = STOP_REASONS.get(result.get("finish_reason") or "stop", "end_turn")
        return [
            *self._close(),
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": usage,
                },
            ),
            event("message_stop", {"type": "message_stop"}),
        ]


async def _buffered_events(writer: EventWriter, result: dict[str, Any]) -> AsyncIterator[bytes]:
    for chunk in writer.start():
        yield chunk
    tool_calls = tuple(
        {"index": i, **call} for i, call in enumerate(result.get("tool_calls") or ())
    )
    for chunk in writer.of(StreamDelta(text=result.get("response") or "", tool_calls=tool_calls)):
        yield chunk
    for chunk in writer.finish(result):
        yield chunk


class MessagesRenderer:
    """The answer in Anthropic's shapes (a message, or its event stream)."""

    record_prefix = "anthropic"
    error_body = staticmethod(anthropic_error_body)

    def __init__(self, payload: MessagesIn) -> None:
        self.payload = payload

    def body(self, completion_id: str, created: int, result: dict[str, Any]) -> bytes:
        return json.dumps(message_body(completion_id, result), separators=(",", ":")).encode()

    def buffered(
        self, completion_id: str, created: int, result: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        return _buffered_events(EventWriter(completion_id, result.get("model") or ""), result)

    def relay(self, completion_id, created, run, record, error_body) -> AsyncIterator[bytes]:
        return relay_events(EventWriter(completion_id, run.spec.name), run, record, error_body)
