"""A scripted in-process provider for router, pool and council tests."""

from __future__ import annotations

import math

from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.providers.base import CompletionRequest, CompletionResponse, Provider


class ScriptedProvider(Provider):
    """Answers per model: a confidence (as logprobs), a text, or an exception to raise.

    `script[model]` is a list consumed in order (the last entry repeats)."""

    def __init__(self, name: str, script: dict[str, list]) -> None:
        self.name = name
        self.key_env = f"{name.upper()}_API_KEY"
        self.script = script
        self.calls: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.calls.append(request)
        entries = self.script[request.model]
        index = sum(1 for c in self.calls if c.model == request.model) - 1
        entry = entries[min(index, len(entries) - 1)]
        if isinstance(entry, BaseException):
            raise entry
        if isinstance(entry, str):
            text, confidence = entry, 0.9
        else:
            text, confidence = f"answer from {request.model}", float(entry)
        return CompletionResponse(
            text=text,
            model=request.model,
            provider=self.name,
            usage=TokenUsage(input_tokens=1000, output_tokens=500),
            finish_reason="stop",
            logprobs=(math.log(confidence),) if confidence > 0 else None,
            latency_ms=10.0,
        )


class UnconfiguredProvider(Provider):
    def __init__(self, name: str, key_env: str) -> None:
        self.name = name
        self.key_env = key_env

    def is_configured(self) -> bool:
        return False
