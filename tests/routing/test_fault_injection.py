"""Reliability: an upstream failing 20% of calls (429 / 500 / 529 / timeouts) loses nothing.

Real OpenAI, Anthropic and Gemini clients talk to one loopback server that speaks all three
wire formats and fails a deterministic 20% of requests. Every routed call must end as a
success (through retry, provider fallback or escalation) or as a typed `RoutingError`
carrying its reason.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx

from routing_platform.engine.catalog import Catalog
from routing_platform.engine.config import RouterConfig
from routing_platform.engine.errors import RoutingError
from routing_platform.engine.executor import Executor
from routing_platform.engine.providers.anthropic import AnthropicProvider
from routing_platform.engine.providers.circuit import CircuitBreaker
from routing_platform.engine.providers.gemini import GeminiProvider
from routing_platform.engine.providers.openai import OpenAIProvider
from routing_platform.engine.providers.pool import ProviderPool
from routing_platform.engine.router import ModelRouter
from tests.engine.test_providers_http import ANTHROPIC_OK, GEMINI_OK, OPENAI_OK
from tests.engine.upstream import Reply

CALLS = 200
TIMEOUT_S = 1.0
IN_FLIGHT = 10


def faulty_responder(received, index):
    rng = random.Random(index)
    if rng.random() < 0.2:
        fault = rng.choice(["429", "500", "529", "timeout"])
        if fault == "429":
            return Reply(429, {"error": {"message": "rate limited"}}, headers={"retry-after": "0"})
        if fault == "timeout":
            return Reply(200, OPENAI_OK, delay_s=TIMEOUT_S * 1.5)
        return Reply(int(fault), {"error": {"message": f"injected {fault}"}})
    if received.path.endswith("/chat/completions"):
        return Reply(200, OPENAI_OK)
    if received.path.endswith("/v1/messages"):
        return Reply(200, ANTHROPIC_OK)
    return Reply(200, GEMINI_OK)


async def test_twenty_percent_upstream_faults_lose_no_call(upstream):
    """200 concurrent routed calls: each ends as a success or a typed error with a reason."""
    upstream.responder = faulty_responder

    async def no_wait(seconds):  # backoff delays are asserted in the provider tests
        await asyncio.sleep(0)

    gate = asyncio.Semaphore(IN_FLIGHT)  # a steady load the loopback server can take

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=IN_FLIGHT)) as client:
        common = {
            "api_key": "k-test",
            "client": client,
            "base_url": upstream.url,
            "timeout_s": TIMEOUT_S,
            "max_retries": 2,
            "sleep": no_wait,
        }
        pool = ProviderPool(
            {
                "openai": OpenAIProvider(**common),
                "anthropic": AnthropicProvider(**common),
                "gemini": GeminiProvider(**common),
            },
            Catalog(),
            breaker_factory=lambda: CircuitBreaker(failure_threshold=50, reset_after_s=1),
        )
        executor = Executor(ModelRouter(RouterConfig(), pool=pool))
        prompts = [
            ("classification", f"Label ticket #{i}: refund or not?")
            if i % 3 == 0
            else ("analysis", f"Analyze the trade-offs of plan {i} versus the status quo.")
            if i % 3 == 1
            else ("reasoning", f"Prove step by step that claim {i} holds, with edge cases. " * 3)
            for i in range(CALLS)
        ]

        async def one(task: str, text: str) -> dict:
            async with gate:
                return await executor.execute(text=text, task_type=task)

        outcomes = await asyncio.gather(
            *(one(task, text) for task, text in prompts),
            return_exceptions=True,
        )

    assert len(outcomes) == CALLS
    successes = [o for o in outcomes if isinstance(o, dict)]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(successes) + len(errors) == CALLS  # none lost
    for error in errors:
        assert isinstance(error, RoutingError), repr(error)
        assert error.reason
        assert error.metadata.get("models_tried")
    for result in successes:
        assert result["response"] == "Paris."
        assert result["_routing_metadata"]["models_tried"]
    # Faults were really injected and absorbed: more requests than calls, nearly all succeed.
    assert len(upstream.received) > CALLS * 1.1
    assert len(successes) >= CALLS * 0.9
    recovered = Counter(
        "fallback" if len(r["_routing_metadata"]["models_tried"]) > 1 else "direct"
        for r in successes
    )
    assert recovered["direct"] > 0
