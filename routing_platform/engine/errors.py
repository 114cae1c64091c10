"""The engine's typed errors. Every failure a caller can see is a `RoutingError`.

`ProviderError` carries the provider, the HTTP status (None for timeouts and connection
errors) and the provider's message; it is raised with `raise ... from err` so the
transport error stays in the chain. Keys never appear in messages.
"""

from __future__ import annotations

from typing import Any


class RoutingError(Exception):
    """Base class. `metadata` holds the partial routing metadata known when it failed."""

    def __init__(self, message: str, *, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, Any] = dict(metadata or {})

    @property
    def reason(self) -> str:
        return self.message


class InvalidRequestError(RoutingError):
    """The caller's request cannot be routed as given (empty text, unknown task type, ...)."""


class UnknownModelError(RoutingError):
    """A model name the catalog does not know, so it has no tier and no price."""

    def __init__(self, model: str, *, known: tuple[str, ...] = (), metadata=None) -> None:
        hint = f" Known models: {', '.join(known)}." if known else ""
        super().__init__(
            f"Unknown model {model!r}: it has no price in genai-prices and no price override."
            + hint,
            metadata=metadata,
        )
        self.model = model


class ProviderError(RoutingError):
    """A provider call failed. `retryable` says whether retrying the same call may help."""

    retryable = False
    attempts = 1  # HTTP attempts made, retries included

    def __init__(
        self,
        provider: str,
        status_code: int | None,
        message: str,
        *,
        retry_after_s: float | None = None,
        retryable: bool | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        status = f" {status_code}" if status_code is not None else ""
        super().__init__(f"{provider}{status}: {message}", metadata=metadata)
        self.provider = provider
        self.status_code = status_code
        self.provider_message = message
        self.retry_after_s = retry_after_s
        if retryable is not None:
            self.retryable = retryable


class ProviderNotConfiguredError(ProviderError):
    """The provider has no API key (or base URL); the message is the one users know."""

    def __init__(self, provider: str, env_var: str, *, metadata=None) -> None:
        super().__init__(
            provider, None, f"{env_var} environment variable not set", metadata=metadata
        )
        self.env_var = env_var
        # The bare message users grep for: "ANTHROPIC_API_KEY environment variable not set".
        self.message = f"{env_var} environment variable not set"
        self.args = (self.message,)


class ProviderAuthError(ProviderError):
    """401/403: the key is wrong or lacks access."""


class ProviderBadRequestError(ProviderError):
    """400/404/422: the provider refused the request as malformed."""


class ContextLengthError(ProviderBadRequestError):
    """The prompt plus max_tokens does not fit the model's context window: the router
    falls back to the next capable model (LiteLLM's context_window_fallbacks)."""


class ProviderRateLimitError(ProviderError):
    """429: rate limited (retryable, honours Retry-After)."""

    retryable = True


class ProviderOverloadedError(ProviderError):
    """5xx and Anthropic's 529: the provider is failing or overloaded (retryable)."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The call did not finish within the per-call timeout (retryable)."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The provider could not be reached (retryable)."""

    retryable = True


class MalformedResponseError(ProviderError):
    """A 2xx answer whose body is not the provider's documented shape."""


class CircuitOpenError(ProviderError):
    """The provider failed repeatedly; its circuit breaker is open, so it was skipped."""


class AllProvidersFailedError(RoutingError):
    """Every provider that could serve the request failed; `errors` lists each reason."""

    def __init__(self, errors: list[ProviderError], *, what: str = "", metadata=None) -> None:
        reasons = "; ".join(str(err) for err in errors) or "no provider is configured"
        prefix = f"all providers failed{f' for {what}' if what else ''}"
        super().__init__(f"{prefix}: {reasons}", metadata=metadata)
        self.errors = list(errors)


class EvaluationParseError(RoutingError):
    """A council member's answer was not the JSON asked for, even after one repair attempt."""
