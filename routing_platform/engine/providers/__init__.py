"""Provider clients. `HTTPProvider` owns HTTP, retries, timeouts and error translation;
each vendor module overrides a few hooks (URL, headers, payload, response parsing)."""

from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    HTTPProvider,
    Provider,
)

__all__ = ["CompletionRequest", "CompletionResponse", "HTTPProvider", "Provider"]
