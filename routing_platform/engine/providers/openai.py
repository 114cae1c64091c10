"""OpenAI chat completions (`POST {OPENAI_BASE_URL}/chat/completions`)."""

from __future__ import annotations

from typing import Any

from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    as_int,
    float_tuple,
)


class OpenAIProvider(HTTPProvider):
    name = "openai"
    key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    max_tokens_field = "max_completion_tokens"

    def url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in request.messages],
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if request.logprobs:
            body["logprobs"] = True
        return body

    def parse(self, data: Any, request: CompletionRequest) -> CompletionResponse:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
        usage = data.get("usage") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        logprobs = None
        if isinstance(choice.get("logprobs"), dict):
            content = choice["logprobs"].get("content") or []
            logprobs = float_tuple([token["logprob"] for token in content])
        return CompletionResponse(
            text=text,
            model=data.get("model") or request.model,
            provider=self.name,
            usage=TokenUsage(
                input_tokens=as_int(usage.get("prompt_tokens")),
                output_tokens=as_int(usage.get("completion_tokens")),
                cache_read_tokens=as_int(prompt_details.get("cached_tokens")),
                reasoning_tokens=as_int(completion_details.get("reasoning_tokens")),
            ),
            finish_reason=choice.get("finish_reason"),
            logprobs=logprobs,
        )
