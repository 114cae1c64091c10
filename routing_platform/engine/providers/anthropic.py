"""Anthropic messages (`POST {ANTHROPIC_BASE_URL}/v1/messages`)."""

from __future__ import annotations

from typing import Any

from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    as_int,
)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024  # the messages API requires max_tokens


class AnthropicProvider(HTTPProvider):
    name = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com"

    def url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/v1/messages"

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
        }

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": request.chat_messages,
        }
        if request.system_text:
            body["system"] = request.system_text
        if request.temperature is not None:
            body["temperature"] = min(1.0, request.temperature)  # Anthropic's range is 0-1
        return body

    def parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        blocks = data["content"]
        text = "".join(block["text"] for block in blocks if block.get("type") == "text")
        usage = data["usage"]
        cache_read = as_int(usage.get("cache_read_input_tokens"))
        cache_write = as_int(usage.get("cache_creation_input_tokens"))
        return CompletionResponse(
            text=text,
            model=data.get("model") or request.model,
            provider=self.name,
            # Anthropic's input_tokens exclude cache reads/writes; the engine counts them in.
            usage=TokenUsage(
                input_tokens=as_int(usage["input_tokens"]) + cache_read + cache_write,
                output_tokens=as_int(usage["output_tokens"]),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            ),
            finish_reason=data.get("stop_reason"),
            logprobs=None,  # the messages API does not return logprobs
        )
