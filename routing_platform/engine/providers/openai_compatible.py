"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp) by base URL; the key is optional."""

from __future__ import annotations

from typing import Any

from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.providers.openai import OpenAIProvider


class OpenAICompatibleProvider(OpenAIProvider):
    name = "openai_compatible"
    key_env = "OPENAI_COMPATIBLE_BASE_URL"
    default_base_url = ""
    # llama.cpp and older vLLM builds only know the original field name.
    max_tokens_field = "max_tokens"

    def is_configured(self) -> bool:
        return bool(self.base_url)

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        body = super().payload(request)
        # Not every server implements logprobs; asking can be a 400.
        body.pop("logprobs", None)
        return body
