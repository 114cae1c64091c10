"""Gemini generateContent (`POST {GEMINI_BASE_URL}/models/{model}:generateContent`)."""

from __future__ import annotations

from typing import Any

from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.errors import ProviderBadRequestError
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    as_int,
)


class GeminiProvider(HTTPProvider):
    name = "gemini"
    key_env = "GEMINI_API_KEY"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def url(self, request: CompletionRequest) -> str:
        return f"{self.base_url}/models/{request.model}:generateContent"

    def headers(self, request: CompletionRequest) -> dict[str, str]:
        # The key goes in a header, never in the URL (URLs end up in logs).
        return {"content-type": "application/json", "x-goog-api-key": self.api_key}

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        contents = [
            {
                "role": "model" if m["role"] == "assistant" else "user",
                "parts": [{"text": m["content"]}],
            }
            for m in request.chat_messages
        ]
        body: dict[str, Any] = {"contents": contents}
        if request.system_text:
            body["systemInstruction"] = {"parts": [{"text": request.system_text}]}
        generation: dict[str, Any] = {}
        if request.max_tokens is not None:
            generation["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            generation["temperature"] = request.temperature
        if request.json_mode:
            generation["responseMimeType"] = "application/json"
        if generation:
            body["generationConfig"] = generation
        return body

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
        text = "".join(part.get("text", "") for part in parts if not part.get("thought"))
        usage = data["usageMetadata"]
        thoughts = as_int(usage.get("thoughtsTokenCount"))
        avg_logprobs = candidate.get("avgLogprobs")
        return CompletionResponse(
            text=text,
            model=data.get("modelVersion") or request.model,
            provider=self.name,
            # Gemini counts thinking tokens apart from the answer; both are billed as output.
            usage=TokenUsage(
                input_tokens=as_int(usage.get("promptTokenCount")),
                output_tokens=as_int(usage.get("candidatesTokenCount")) + thoughts,
                cache_read_tokens=as_int(usage.get("cachedContentTokenCount")),
                reasoning_tokens=thoughts,
            ),
            finish_reason=candidate.get("finishReason"),
            logprobs=(float(avg_logprobs),) if isinstance(avg_logprobs, int | float) else None,
        )
