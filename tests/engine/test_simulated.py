"""The simulated provider: deterministic, tier-dependent, always marked simulated."""

from __future__ import annotations

import json
import statistics

from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.providers.simulated import SimulatedProvider
from tests.engine.conftest import RecordingSleep


def request(text: str, tier: str, model: str = "m", **kwargs) -> CompletionRequest:
    return CompletionRequest(
        model=model,
        messages=({"role": "user", "content": text},),
        tier=tier,
        task_type=kwargs.pop("task_type", "analysis"),
        **kwargs,
    )


async def test_same_prompt_and_seed_give_the_same_answer():
    """Deterministic: text, usage, confidence and latency repeat exactly."""
    sleep = RecordingSleep()
    first = await SimulatedProvider(seed=7, sleep=sleep).complete(request("Explain DNS", "mini"))
    second = await SimulatedProvider(seed=7, sleep=sleep).complete(request("Explain DNS", "mini"))
    assert first == second
    assert first.provider == "simulated"
    assert sleep.delays[0] == sleep.delays[1]


async def test_a_different_seed_changes_the_answer():
    """The seed is part of the simulation."""
    a = await SimulatedProvider(seed=1, sleep=RecordingSleep()).complete(
        request("Explain DNS", "mini")
    )
    b = await SimulatedProvider(seed=2, sleep=RecordingSleep()).complete(
        request("Explain DNS", "mini")
    )
    assert (a.logprobs, a.usage) != (b.logprobs, b.usage)


async def test_premium_is_more_confident_and_slower_than_mini_on_hard_prompts():
    """Tier-dependent quality and latency, averaged over many prompts."""
    hard = [
        f"Prove step by step and derive the optimal algorithm for case {i}; compare trade-offs "
        "and edge cases rigorously." * 3
        for i in range(40)
    ]
    results = {}
    for tier in ("mini", "premium"):
        sleep = RecordingSleep()
        provider = SimulatedProvider(seed=0, sleep=sleep)
        confidences = []
        for text in hard:
            response = await provider.complete(request(text, tier, task_type="reasoning"))
            confidences.append(sum(response.logprobs) / len(response.logprobs))
        results[tier] = (statistics.mean(confidences), statistics.mean(sleep.delays))
    assert results["premium"][0] > results["mini"][0]
    assert results["premium"][1] > results["mini"][1]


async def test_default_latencies_are_tens_of_milliseconds():
    """Tests and the demo stay quick: every simulated call sleeps well under 0.1 s."""
    sleep = RecordingSleep()
    provider = SimulatedProvider(sleep=sleep)
    for tier in ("mini", "standard", "premium"):
        await provider.complete(request("Summarise the plot of Hamlet " * 20, tier))
    assert all(0.001 < delay < 0.1 for delay in sleep.delays)


async def test_fixed_latency_is_honoured():
    """ROUTER_SIMULATED_LATENCY_MS: every call takes exactly that long."""
    sleep = RecordingSleep()
    provider = SimulatedProvider(fixed_latency_ms=50, sleep=sleep)
    for tier in ("mini", "premium"):
        response = await provider.complete(request("hello", tier))
        assert response.latency_ms == 50
    assert sleep.delays == [0.05, 0.05]


async def test_max_tokens_truncates_and_says_so():
    """Asking for fewer tokens than the answer needs gives finish_reason=length."""
    response = await SimulatedProvider(sleep=RecordingSleep()).complete(
        request("Write a long essay on the history of Rome", "premium", max_tokens=5)
    )
    assert response.usage.output_tokens == 5
    assert response.finish_reason == "length"


async def test_json_mode_returns_an_evaluation():
    """Council requests get JSON with score, verdict, feedback and confidence."""
    provider = SimulatedProvider(sleep=RecordingSleep())
    response = await provider.complete(
        request("Script: buy my course", "premium", model="gpt-4.1", json_mode=True)
    )
    data = json.loads(response.text)
    assert set(data) == {"score", "verdict", "feedback", "confidence"}
    assert 0 <= data["score"] <= 100
