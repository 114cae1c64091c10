"""Anthropic messages (`POST {ANTHROPIC_BASE_URL}/v1/messages`).

The gateway's OpenAI-shaped fields, translated: system / developer messages -> `system`;
tools -> `input_schema` tools, `tool_calls` / tool results -> `tool_use` / `tool_result`
blocks; image parts -> image blocks (base64 or URL source); stop -> `stop_sequences`;
`tool_choice` required -> any, a named function -> tool, `parallel_tool_calls: false` ->
`disable_parallel_tool_use`. JSON mode has no native switch: `json_object` becomes an
instruction, `json_schema` a forced tool whose input is the answer (an instruction
carrying the schema when the request has tools of its own). Anthropic has no seed and no
logprobs: those fields are refused (400), never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from routing_platform.engine.chat import (
    ANTHROPIC_FINISH,
    FIELDS,
    ChatOptions,
    StreamDelta,
    data_url_parts,
    message_text,
    openai_finish_reason,
)
from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.errors import ProviderOverloadedError
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    as_int,
)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024  # the messages API requires max_tokens
JSON_TOOL = "json_response"  # the forced tool whose input is a json_schema answer
JSON_INSTRUCTION = "Answer with a single valid JSON object and nothing else."


def anthropic_usage(usage: dict[str, Any]) -> TokenUsage:
    cache_read = as_int(usage.get("cache_read_input_tokens"))
    cache_write = as_int(usage.get("cache_creation_input_tokens"))
    # Anthropic's input_tokens exclude cache reads/writes; the engine counts them in.
    return TokenUsage(
        input_tokens=as_int(usage.get("input_tokens")) + cache_read + cache_write,
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _image_block(url: str) -> dict[str, Any]:
    parts = data_url_parts(url)
    if parts is None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = parts
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "image_url":
                blocks.append(_image_block(part["image_url"]["url"]))
            elif part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
    for call in message.get("tool_calls") or ():
        function = call["function"]
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": function["name"],
                "input": json.loads(function.get("arguments") or "{}"),
            }
        )
    return blocks


def anthropic_messages(messages: Iterable[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, messages) from OpenAI-shaped messages; same-role turns are merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(message_text(message))
            continue
        if role in ("tool", "function"):
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id") or "",
                    "content": message_text(message),
                }
            ]
        else:
            blocks = _content_blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(part for part in system if part), turns


def anthropic_tool_choice(options: ChatOptions) -> dict[str, Any] | None:
    choice = options.tool_choice
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    else:
        result = {"type": "tool", "name": choice["function"]["name"]}
    if options.parallel_tool_calls is False and (result is None or result["type"] != "none"):
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def anthropic_tools(options: ChatOptions) -> list[dict[str, Any]]:
    tools = []
    for tool in options.tools:
        function = tool["function"]
        spec = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        tools.append(spec)
    return tools


def uses_json_tool(options: ChatOptions | None) -> bool:
    return options is not None and options.json_mode == "json_schema" and not options.tools


class AnthropicProvider(HTTPProvider):
    name = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com"
    supports = frozenset(FIELDS) - {"seed", "logprobs", "top_logprobs"}
    streams = True

    def url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/v1/messages"

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
        }

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        options = request.options
        if options is not None:
            system, messages = anthropic_messages(options.messages)
        else:
            system, messages = request.system_text, request.chat_messages
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if options is not None:
            system = self._options(options, body, system)
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(1.0, request.temperature)  # Anthropic's range is 0-1
        return body

    @staticmethod
    def _options(options: ChatOptions, body: dict[str, Any], system: str) -> str:
        """Put the options into ``body``; returns the system text (JSON mode may add to it)."""
        if options.tools:
            body["tools"] = anthropic_tools(options)
        tool_choice = anthropic_tool_choice(options)
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
        if options.stop:
            body["stop_sequences"] = list(options.stop)
        if uses_json_tool(options):
            schema = options.json_schema or {}
            body["tools"] = [
                {
                    "name": JSON_TOOL,
                    "description": "Give the answer as this tool's input.",
                    "input_schema": schema.get("schema") or {"type": "object"},
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
        elif options.json_mode == "json_schema":
            schema = json.dumps((options.json_schema or {}).get("schema") or {})
            system = f"{system}\n\n{JSON_INSTRUCTION} It must match this JSON schema: {schema}"
        elif options.json_mode:
            system = f"{system}\n\n{JSON_INSTRUCTION}"
        return system.strip()

    def parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        blocks = data["content"]
        text = "".join(block["text"] for block in blocks if block.get("type") == "text")
        tool_calls = []
        for block in blocks:
            if block.get("type") != "tool_use":
                continue
            if uses_json_tool(request.options) and block.get("name") == JSON_TOOL:
                text = json.dumps(block.get("input"))
                continue
            tool_calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
                }
            )
        return CompletionResponse(
            text=text,
            model=data.get("model") or request.model,
            provider=self.name,
            usage=anthropic_usage(data["usage"]),
            finish_reason=openai_finish_reason(
                ANTHROPIC_FINISH, data.get("stop_reason"), bool(tool_calls)
            ),
            logprobs=None,  # the messages API does not return logprobs
            tool_calls=tuple(tool_calls),
        )

    def stream_events(self, data: Any, state: dict[str, Any]) -> Iterable[StreamDelta]:
        kind = data["type"]
        if kind == "message_start":
            message = data["message"]
            state["usage"] = message.get("usage") or {}
            state["tools"] = {}
            yield StreamDelta(model=message.get("model") or "")
        elif kind == "content_block_start":
            block = data["content_block"]
            if block["type"] == "tool_use" and block.get("name") != JSON_TOOL:
                index = len(state["tools"])
                state["tools"][data["index"]] = index
                yield StreamDelta(
                    tool_calls=(
                        {
                            "index": index,
                            "id": block["id"],
                            "type": "function",
                            "function": {"name": block["name"], "arguments": ""},
                        },
                    )
                )
        elif kind == "content_block_delta":
            yield from self._block_delta(data, state)
        elif kind == "message_delta":
            usage = {**state["usage"], **(data.get("usage") or {})}
            reason = (data.get("delta") or {}).get("stop_reason")
            yield StreamDelta(
                finish_reason=openai_finish_reason(ANTHROPIC_FINISH, reason, bool(state["tools"])),
                usage=anthropic_usage(usage),
            )
        elif kind == "error":
            error = data.get("error") or {}
            raise ProviderOverloadedError(self.name, None, str(error.get("message") or error))

    @staticmethod
    def _block_delta(data: dict[str, Any], state: dict[str, Any]) -> Iterable[StreamDelta]:
        delta = data["delta"]
        if delta["type"] == "text_delta":
            yield StreamDelta(text=delta["text"])
        elif delta["type"] == "input_json_delta":
            index = state["tools"].get(data["index"])
            if index is None:  # the forced JSON tool: its input is the answer's text
                yield StreamDelta(text=delta.get("partial_json") or "")
            else:
                yield StreamDelta(
                    tool_calls=(
                        {"index": index, "function": {"arguments": delta.get("partial_json")}},
                    )
                )
