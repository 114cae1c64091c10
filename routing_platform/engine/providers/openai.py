"""OpenAI chat completions (`POST {OPENAI_BASE_URL}/chat/completions`).

The gateway's fields are OpenAI's own, so they pass through unchanged: tools, tool_choice,
parallel_tool_calls, response_format, image parts, stop, seed, logprobs / top_logprobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from routing_platform.engine.chat import FIELDS, StreamDelta
from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    as_int,
    float_tuple,
)


def openai_usage(usage: dict[str, Any]) -> TokenUsage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return TokenUsage(
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
        cache_read_tokens=as_int(prompt_details.get("cached_tokens")),
        reasoning_tokens=as_int(completion_details.get("reasoning_tokens")),
    )


class OpenAIProvider(HTTPProvider):
    name = "openai"
    key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    max_tokens_field = "max_completion_tokens"
    supports = frozenset(FIELDS)
    streams = True

    def url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        options = request.options
        messages = options.messages if options is not None else request.messages
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self._message(m) for m in messages],
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if request.logprobs:
            body["logprobs"] = True
        if options is not None:
            body.update(self._options(options))
        return body

    @staticmethod
    def _message(message: Any) -> dict[str, Any]:
        if "tool_calls" in message or "tool_call_id" in message or "name" in message:
            return dict(message)
        return {"role": message["role"], "content": message["content"]}

    @staticmethod
    def _options(options: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if options.tools:
            extra["tools"] = list(options.tools)
        for name in ("tool_choice", "parallel_tool_calls", "response_format", "seed"):
            value = getattr(options, name)
            if value is not None:
                extra[name] = value
        if options.stop:
            extra["stop"] = list(options.stop)
        if options.top_logprobs is not None:
            extra["top_logprobs"] = options.top_logprobs
        return extra

    def parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
        logprobs = token_logprobs = None
        if isinstance(choice.get("logprobs"), dict):
            content = choice["logprobs"].get("content") or []
            logprobs = float_tuple([token["logprob"] for token in content])
            token_logprobs = tuple(content) or None
        return CompletionResponse(
            text=text,
            model=data.get("model") or request.model,
            provider=self.name,
            usage=openai_usage(data.get("usage") or {}),
            finish_reason=choice.get("finish_reason"),
            logprobs=logprobs,
            tool_calls=tuple(message.get("tool_calls") or ()),
            token_logprobs=token_logprobs,
        )

    def stream_payload(self, request: CompletionRequest) -> dict[str, Any]:
        return {**self.payload(request), "stream": True, "stream_options": {"include_usage": True}}

    def stream_events(self, data: Any, state: dict[str, Any]) -> Iterable[StreamDelta]:
        if "error" in data:
            raise ValueError(f"error event: {data['error']}")
        usage = openai_usage(data["usage"]) if data.get("usage") else None
        model = data.get("model") or ""
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            logprobs = choice.get("logprobs") or {}
            yield StreamDelta(
                text=delta.get("content") or "",
                tool_calls=tuple(delta.get("tool_calls") or ()),
                finish_reason=choice.get("finish_reason"),
                model=model,
                logprobs=tuple(logprobs.get("content") or ()) or None,
            )
        if usage is not None:
            yield StreamDelta(usage=usage, model=model)
