"""The gateway's request and answer beyond plain text, in OpenAI's chat shape.

OpenAI's chat completion format is the gateway's lingua franca: the OpenAI-compatible
endpoint passes its fields through as they are, the Anthropic Messages endpoint translates
into them, and each provider translates them into its own wire format (and its answer
back). `ChatOptions` carries the fields; `fields_used()` names the ones a request sets, so
that a model whose provider cannot honour one is refused with a 400 naming the field
(never silently dropped); `StreamDelta` is one piece of a streamed answer, and
`StreamAccumulator` joins the pieces into the final answer for the call's record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.errors import InvalidRequestError

# Request fields (and "image_url", for image content parts) a provider may support.
FIELDS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "response_format.json_schema",
    "image_url",
    "image_url.http",
    "stop",
    "seed",
    "logprobs",
    "top_logprobs",
)


class UnsupportedFieldError(InvalidRequestError):
    """A request field the chosen model cannot honour; `param` names it."""

    def __init__(self, param: str, model: str, detail: str = "") -> None:
        super().__init__(
            f"{param} is not supported by {model}"
            + (f" ({detail})" if detail else "")
            + ": drop the field or pick another model."
        )
        self.param = param


@dataclass(frozen=True)
class ChatOptions:
    """OpenAI-shaped messages (content parts, tool calls, tool results) and the fields
    beyond text. Validated by the API's schemas before it gets here."""

    messages: tuple[dict[str, Any], ...] = ()
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = None

    @property
    def json_mode(self) -> str:
        """ "" (text), "json_object" or "json_schema"."""
        kind = (self.response_format or {}).get("type", "text")
        return "" if kind == "text" else kind

    @property
    def json_schema(self) -> dict[str, Any] | None:
        if self.json_mode != "json_schema":
            return None
        return (self.response_format or {}).get("json_schema") or {}

    @property
    def has_images(self) -> bool:
        return any(part.get("type") == "image_url" for _, _, part in content_parts(self.messages))

    def fields_used(self) -> tuple[str, ...]:
        used = []
        if self.tools:
            used.append("tools")
        if self.tool_choice is not None:
            used.append("tool_choice")
        if self.parallel_tool_calls is False:  # true is every provider's default
            used.append("parallel_tool_calls")
        if self.json_mode:
            used.append("response_format")
        if self.json_mode == "json_schema":
            used.append("response_format.json_schema")
        if self.has_images:
            used.append("image_url")
        if any(
            part.get("type") == "image_url" and data_url_parts(part["image_url"]["url"]) is None
            for _, _, part in content_parts(self.messages)
        ):
            used.append("image_url.http")
        if self.stop:
            used.append("stop")
        if self.seed is not None:
            used.append("seed")
        if self.logprobs:
            used.append("logprobs")
        if self.top_logprobs is not None:
            used.append("top_logprobs")
        return tuple(used)


def content_parts(messages: Iterable[dict[str, Any]]):
    """(message index, part index, part) of every content part given as a list."""
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                yield index, part_index, part


def message_text(message: dict[str, Any]) -> str:
    """A message's text: its string content, or its text parts joined."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text") or "" for part in content if part.get("type") == "text")


def check_supported(options: ChatOptions | None, supported: frozenset[str], model: str) -> None:
    """Raise `UnsupportedFieldError` for the first field of `options` outside `supported`."""
    if options is None:
        return
    for name in options.fields_used():
        if name not in supported:
            raise UnsupportedFieldError(name, model)


def data_url_parts(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not media_type:
        return None
    return media_type, data


# -- finish reasons -------------------------------------------------------------------------

ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
GEMINI_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
}


def openai_finish_reason(table: dict[str, str], raw: str | None, has_tool_calls: bool) -> str:
    """A vendor's stop reason in OpenAI's vocabulary (stop, length, tool_calls, content_filter)."""
    if has_tool_calls and raw in (None, "STOP", "tool_use", "end_turn"):
        return "tool_calls"
    reason = table.get(raw, "stop") if raw is not None else "stop"
    # Anthropic's forced JSON tool ends with tool_use, but answers text, not a tool call.
    return "stop" if reason == "tool_calls" and not has_tool_calls else reason


# -- streaming ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamDelta:
    """One piece of a streamed answer. `tool_calls` are OpenAI chunk deltas (with `index`)."""

    text: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    model: str = ""
    logprobs: tuple[dict[str, Any], ...] | None = None


@dataclass
class StreamAccumulator:
    """The answer so far, from its deltas: text, tool calls, finish reason, usage, logprobs."""

    text_parts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    model: str = ""
    token_logprobs: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 0

    def add(self, delta: StreamDelta) -> None:
        self.chunks += 1
        if delta.text:
            self.text_parts.append(delta.text)
        for call in delta.tool_calls:
            merged = self.calls.setdefault(
                int(call.get("index", 0)),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            if call.get("id"):
                merged["id"] = call["id"]
            function = call.get("function") or {}
            if function.get("name"):
                merged["function"]["name"] = function["name"]
            merged["function"]["arguments"] += function.get("arguments") or ""
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.model:
            self.model = delta.model
        if delta.logprobs:
            self.token_logprobs.extend(delta.logprobs)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def tool_calls(self) -> tuple[dict[str, Any], ...]:
        return tuple(self.calls[index] for index in sorted(self.calls))


def tool_call_deltas(tool_calls: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Complete tool calls as the chunk deltas that stream them in one piece each."""
    return tuple({"index": index, **call} for index, call in enumerate(tool_calls))
