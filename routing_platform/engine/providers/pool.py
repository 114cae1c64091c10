"""The provider pool: which provider serves which model, with fallback and circuit breakers.

`call_tier()` tries the models of one tier in catalog order, skipping providers that are
not configured or whose circuit is open, and falls back to the next one on a provider
error; when all fail it raises `AllProvidersFailedError` listing every reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from routing_platform.engine.catalog import PROVIDER_KEY_ENV, Catalog, ModelSpec
from routing_platform.engine.errors import (
    AllProvidersFailedError,
    CircuitOpenError,
    ProviderError,
    ProviderNotConfiguredError,
)
from routing_platform.engine.providers.base import Provider
from routing_platform.engine.providers.circuit import CircuitBreaker, counts_as_failure

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    model: str
    provider: str
    error: ProviderError


class ProviderPool:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        catalog: Catalog,
        *,
        breakers: dict[str, CircuitBreaker] | None = None,
        breaker_factory: Callable[[], CircuitBreaker] = CircuitBreaker,
    ) -> None:
        self.providers = dict(providers)
        self.catalog = catalog
        self.breakers = breakers if breakers is not None else {}
        self._breaker_factory = breaker_factory

    @property
    def simulated(self) -> bool:
        return bool(self.providers) and all(p.simulated for p in self.providers.values())

    def configured_providers(self) -> list[str]:
        """Catalog providers with a configured client, in catalog order."""
        seen: list[str] = []
        for spec in self.catalog:
            provider = self.providers.get(spec.provider)
            if provider is not None and provider.is_configured() and spec.provider not in seen:
                seen.append(spec.provider)
        return seen

    def candidates(
        self, tier: str, accept: Callable[[ModelSpec], bool] | None = None
    ) -> list[ModelSpec]:
        """Configured models of ``tier`` in catalog order (those ``accept`` takes, if given)."""
        specs = self.catalog.models_for(tier, self.configured_providers())
        return specs if accept is None else [spec for spec in specs if accept(spec)]

    def breaker(self, provider: str) -> CircuitBreaker:
        if provider not in self.breakers:
            self.breakers[provider] = self._breaker_factory()
        return self.breakers[provider]

    def provider_for(self, spec: ModelSpec) -> Provider:
        provider = self.providers.get(spec.provider)
        if provider is None:
            raise ProviderNotConfiguredError(spec.provider, PROVIDER_KEY_ENV.get(spec.provider, ""))
        return provider

    async def call_model(
        self, spec: ModelSpec, fn: Callable[[ModelSpec, Provider], Awaitable[T]]
    ) -> T:
        """One model, no fallback: the pass-through path and council members."""
        provider = self.provider_for(spec)
        if not provider.is_configured():
            raise ProviderNotConfiguredError(spec.provider, provider.key_env)
        breaker = self.breaker(spec.provider)
        if not breaker.allow():
            raise CircuitOpenError(
                spec.provider,
                None,
                f"circuit open after repeated failures; retrying in {breaker.retry_in_s():.0f}s",
            )
        try:
            result = await fn(spec, provider)
        except ProviderError as err:
            if counts_as_failure(err):
                breaker.record_failure()
            else:
                breaker.record_success()  # the provider answered; the request was at fault
            raise
        breaker.record_success()
        return result

    async def call_tier(
        self,
        tier: str,
        fn: Callable[[ModelSpec, Provider], Awaitable[T]],
        accept: Callable[[ModelSpec], bool] | None = None,
    ) -> tuple[ModelSpec, T, list[Failure]]:
        """The first model of `tier` that answers, falling back across providers (only
        models ``accept`` takes: those able to serve the request)."""
        failures: list[Failure] = []
        for spec in self.candidates(tier, accept):
            try:
                result = await self.call_model(spec, fn)
            except ProviderError as err:
                failures.append(Failure(spec.name, spec.provider, err))
                continue
            return spec, result, failures
        error = AllProvidersFailedError([f.error for f in failures], what=f"tier {tier}")
        if not failures:
            error = AllProvidersFailedError(
                [ProviderNotConfiguredError(name, env) for name, env in self._missing_keys()],
                what=f"tier {tier}",
            )
        error.failures = failures  # type: ignore[attr-defined]
        raise error

    def _missing_keys(self) -> list[tuple[str, str]]:
        missing = []
        for name, provider in self.providers.items():
            if not provider.is_configured():
                missing.append((name, provider.key_env))
        return missing
