"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp) by base URL; the key is optional."""

from __future__ import annotations

from typing import Any

from routing_platform.engine.chat import FIELDS
from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.providers.openai import OpenAIProvider


class OpenAICompatibleProvider(OpenAIProvider):
    name = "openai_compatible"
    key_env = "OPENAI_COMPATIBLE_BASE_URL"
    default_base_url = ""
    # llama.cpp and older vLLM builds only know the original field name.
    max_tokens_field = "max_tokens"
    # Not every server implements logprobs or images: a request asking for them is refused.
    supports = frozenset(FIELDS) - {
        "logprobs",
        "top_logprobs",
        "image_url",
        "image_url.http",
    }

    def is_configured(self) -> bool:
        return bool(self.base_url)

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        body = super().payload(request)
        # The router's own confidence request: not every server implements it (a 400).
        body.pop("logprobs", None)
        return body
