"""The circuit breaker, alone and inside the pool."""

from __future__ import annotations

import pytest

from routing_platform.engine.catalog import Catalog
from routing_platform.engine.errors import (
    CircuitOpenError,
    ProviderBadRequestError,
    ProviderOverloadedError,
)
from routing_platform.engine.providers.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from routing_platform.engine.providers.pool import ProviderPool
from tests.engine.fakes import ScriptedProvider


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_then_probes_after_the_reset():
    """closed -> open after N failures -> half-open after reset_s -> closed on success."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()
    clock.now += 31
    assert breaker.allow()  # the probe
    assert breaker.state == HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow()


def test_a_failed_probe_reopens():
    """Half-open and the probe fails: open again for another reset period."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10, clock=clock)
    breaker.record_failure()
    clock.now += 11
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()


def test_success_resets_the_failure_count():
    """Failures must be consecutive to open the circuit."""
    breaker = CircuitBreaker(failure_threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == CLOSED


async def test_pool_skips_an_open_provider_and_falls_back():
    """After repeated failures the pool stops calling OpenAI and goes straight to Anthropic."""
    clock = Clock()
    failing = ProviderOverloadedError("openai", 500, "down")
    openai = ScriptedProvider("openai", {"gpt-4.1-nano": [failing]})
    anthropic = ScriptedProvider("anthropic", {"claude-3-5-haiku-latest": [0.9]})
    pool = ProviderPool(
        {"openai": openai, "anthropic": anthropic},
        Catalog(),
        breaker_factory=lambda: CircuitBreaker(failure_threshold=2, reset_after_s=60, clock=clock),
    )

    async def call(spec, provider):
        from routing_platform.engine.providers.base import CompletionRequest

        return await provider.complete(
            CompletionRequest(model=spec.name, messages=({"role": "user", "content": "hi"},))
        )

    for _ in range(2):
        spec, _, failures = await pool.call_tier("mini", call)
        assert spec.provider == "anthropic" and len(failures) == 1
    assert len(openai.calls) == 2
    spec, _, failures = await pool.call_tier("mini", call)
    assert len(openai.calls) == 2  # skipped: circuit open
    assert isinstance(failures[0].error, CircuitOpenError)
    clock.now += 61
    await pool.call_tier("mini", call)
    assert len(openai.calls) == 3  # probed again after the reset


async def test_bad_requests_do_not_trip_the_breaker():
    """A 400 is the caller's fault; the provider stays in service."""
    bad = ProviderBadRequestError("openai", 400, "bad")
    openai = ScriptedProvider("openai", {"gpt-4.1-nano": [bad]})
    pool = ProviderPool(
        {"openai": openai}, Catalog(), breaker_factory=lambda: CircuitBreaker(failure_threshold=1)
    )

    async def call(spec, provider):
        from routing_platform.engine.providers.base import CompletionRequest

        return await provider.complete(
            CompletionRequest(model=spec.name, messages=({"role": "user", "content": "hi"},))
        )

    for _ in range(3):
        with pytest.raises(ProviderBadRequestError):
            await pool.call_model(Catalog().get("gpt-4.1-nano"), call)
    assert pool.breaker("openai").state == CLOSED
    assert len(openai.calls) == 3
