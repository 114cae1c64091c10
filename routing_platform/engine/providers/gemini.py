"""Gemini generateContent (`POST {GEMINI_BASE_URL}/models/{model}:generateContent`).

The gateway's OpenAI-shaped fields, translated: system / developer messages ->
`systemInstruction`; tools -> `functionDeclarations`, `tool_calls` / tool results ->
`functionCall` / `functionResponse` parts; `tool_choice` -> `functionCallingConfig`; image
parts -> `inlineData` (data: URLs; Gemini cannot fetch an http URL, so one is refused);
`response_format` -> `responseMimeType` / `responseSchema`; stop -> `stopSequences`; seed ->
`seed`. Streaming uses `:streamGenerateContent?alt=sse`. Gemini has no switch for
`parallel_tool_calls: false` and no per-token logprobs here: those are refused (400).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from routing_platform.engine.chat import (
    FIELDS,
    GEMINI_FINISH,
    ChatOptions,
    StreamDelta,
    UnsupportedFieldError,
    data_url_parts,
    message_text,
    openai_finish_reason,
)
from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.errors import ProviderBadRequestError
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    as_int,
)

# The JSON-schema keywords Gemini's OpenAPI-subset schemas accept.
SCHEMA_KEYS = frozenset(
    {"type", "properties", "required", "items", "enum", "description", "format", "nullable"}
    | {"minItems", "maxItems", "anyOf", "propertyOrdering", "minimum", "maximum", "title"}
)
TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def gemini_schema(schema: Any) -> Any:
    """A JSON schema reduced to the keywords Gemini accepts (recursively)."""
    if isinstance(schema, list):
        return [gemini_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reduced = {}
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            continue
        if key == "properties":
            reduced[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            reduced[key] = gemini_schema(value)
        else:
            reduced[key] = value
    return reduced


def gemini_usage(usage: dict[str, Any]) -> TokenUsage:
    thoughts = as_int(usage.get("thoughtsTokenCount"))
    # Gemini counts thinking tokens apart from the answer; both are billed as output.
    return TokenUsage(
        input_tokens=as_int(usage.get("promptTokenCount")),
        output_tokens=as_int(usage.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=as_int(usage.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _parts(message: dict[str, Any], model: str) -> list[dict[str, Any]]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str) and content:
        parts.append({"text": content})
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "image_url":
                inline = data_url_parts(part["image_url"]["url"])
                if inline is None:
                    raise UnsupportedFieldError(
                        "image_url", model, "Gemini takes images as data: URLs, not links"
                    )
                parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
            elif part.get("text"):
                parts.append({"text": part["text"]})
    for call in message.get("tool_calls") or ():
        function = call["function"]
        parts.append(
            {
                "functionCall": {
                    "name": function["name"],
                    "args": json.loads(function.get("arguments") or "{}"),
                }
            }
        )
    return parts


def gemini_contents(
    messages: Iterable[dict[str, Any]], model: str
) -> tuple[str, list[dict[str, Any]]]:
    """(system text, contents) from OpenAI-shaped messages; same-role turns are merged."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(message_text(message))
            continue
        for call in message.get("tool_calls") or ():
            call_names[call["id"]] = call["function"]["name"]
        if role in ("tool", "function"):
            name = message.get("name") or call_names.get(message.get("tool_call_id") or "", "")
            parts = [
                {
                    "functionResponse": {
                        "name": name or "tool",
                        "response": {"content": message_text(message)},
                    }
                }
            ]
            turn_role = "user"
        else:
            parts = _parts(message, model)
            turn_role = "model" if role == "assistant" else "user"
        if contents and contents[-1]["role"] == turn_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn_role, "parts": parts})
    return "\n\n".join(part for part in system if part), contents


def _function_calls(parts: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    calls = []
    for part in parts:
        call = part.get("functionCall")
        if call is None:
            continue
        index = start + len(calls)
        calls.append(
            {
                "id": call.get("id") or f"call_{index}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call.get("args") or {})},
            }
        )
    return calls


def _text(parts: list[dict[str, Any]]) -> str:
    return "".join(part.get("text", "") for part in parts if not part.get("thought"))


class GeminiProvider(HTTPProvider):
    name = "gemini"
    key_env = "GEMINI_API_KEY"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    supports = frozenset(FIELDS) - {
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
        "image_url.http",
    }
    streams = True

    def url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/models/{request.model}:generateContent"

    def stream_url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/models/{request.model}:streamGenerateContent?alt=sse"

    def stream_payload(self, request: CompletionRequest) -> dict[str, Any]:
        return self.payload(request)

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        # The key goes in a header, never in the URL (URLs end up in logs).
        return {"content-type": "application/json", "x-goog-api-key": self.api_key}

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        options = request.options
        if options is not None:
            system, contents = gemini_contents(options.messages, request.model)
        else:
            system = request.system_text
            contents = [
                {
                    "role": "model" if m["role"] == "assistant" else "user",
                    "parts": [{"text": m["content"]}],
                }
                for m in request.chat_messages
            ]
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        generation: dict[str, Any] = {}
        if request.max_tokens is not None:
            generation["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            generation["temperature"] = request.temperature
        if request.json_mode:
            generation["responseMimeType"] = "application/json"
        if options is not None:
            self._options(options, body, generation)
        if generation:
            body["generationConfig"] = generation
        return body

    @staticmethod
    def _options(options: ChatOptions, body: dict[str, Any], generation: dict[str, Any]) -> None:
        if options.tools:
            declarations = []
            for tool in options.tools:
                function = tool["function"]
                declaration = {"name": function["name"]}
                if function.get("description"):
                    declaration["description"] = function["description"]
                if function.get("parameters"):
                    declaration["parameters"] = gemini_schema(function["parameters"])
                declarations.append(declaration)
            body["tools"] = [{"functionDeclarations": declarations}]
        choice = options.tool_choice
        if choice is not None:
            if isinstance(choice, str):
                config: dict[str, Any] = {"mode": TOOL_MODES[choice]}
            else:
                config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
            body["toolConfig"] = {"functionCallingConfig": config}
        if options.json_mode:
            generation["responseMimeType"] = "application/json"
        if options.json_schema is not None:
            generation["responseSchema"] = gemini_schema(options.json_schema.get("schema") or {})
        if options.stop:
            generation["stopSequences"] = list(options.stop)
        if options.seed is not None:
            generation["seed"] = options.seed

    def parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        candidates = data.get("candidates")
        if not candidates:
            feedback = data.get("promptFeedback") or {}
            reason = feedback.get("blockReason")
            if reason:
                raise ProviderBadRequestError(self.name, 200, f"prompt blocked: {reason}")
            raise KeyError("candidates")
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        tool_calls = _function_calls(parts)
        avg_logprobs = candidate.get("avgLogprobs")
        return CompletionResponse(
            text=_text(parts),
            model=data.get("modelVersion") or request.model,
            provider=self.name,
            usage=gemini_usage(data["usageMetadata"]),
            finish_reason=openai_finish_reason(
                GEMINI_FINISH, candidate.get("finishReason"), bool(tool_calls)
            ),
            logprobs=(float(avg_logprobs),) if isinstance(avg_logprobs, int | float) else None,
            tool_calls=tuple(tool_calls),
        )

    def stream_events(self, data: Any, state: dict[str, Any]) -> Iterable[StreamDelta]:
        if "error" in data:
            raise ValueError(f"error event: {data['error']}")
        model = data.get("modelVersion") or ""
        usage = gemini_usage(data["usageMetadata"]) if data.get("usageMetadata") else None
        for candidate in data.get("candidates") or ():
            parts = (candidate.get("content") or {}).get("parts") or []
            start = state.setdefault("calls", 0)
            calls = _function_calls(parts, start)
            state["calls"] = start + len(calls)
            reason = candidate.get("finishReason")
            yield StreamDelta(
                text=_text(parts),
                tool_calls=tuple({"index": start + i, **call} for i, call in enumerate(calls)),
                finish_reason=(
                    openai_finish_reason(GEMINI_FINISH, reason, state["calls"] > 0)
                    if reason
                    else None
                ),
                model=model,
            )
        if usage is not None:
            yield StreamDelta(usage=usage, model=model)
