"""The router: tier choice, the escalation cascade, fallback, failures, the learned hook."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing_platform.engine import router as router_module
from routing_platform.engine.catalog import Catalog
from routing_platform.engine.config import RouterConfig
from routing_platform.engine.cost import TokenUsage, cost_usd
from routing_platform.engine.errors import AllProvidersFailedError, ProviderOverloadedError
from routing_platform.engine.learned import Assessment
from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.providers.pool import ProviderPool
from routing_platform.engine.router import ModelRouter, default_call
from tests.engine.fakes import ScriptedProvider, UnconfiguredProvider

SIMPLE = "Is this spam? yes or no: 'You won a cruise'"
MEDIUM = "Analyze the trade-offs between a monolith and microservices for a small startup."
COMPLEX = (
    "Prove step by step and derive rigorously the optimal algorithm; compare trade-offs, "
    "edge cases and complexity of concurrent implementations. " * 4
)


def pool_with(script: dict[str, list], **extra) -> tuple[ProviderPool, ScriptedProvider]:
    openai = ScriptedProvider("openai", script)
    providers = {
        "openai": openai,
        "anthropic": UnconfiguredProvider("anthropic", "ANTHROPIC_API_KEY"),
        "gemini": UnconfiguredProvider("gemini", "GEMINI_API_KEY"),
        **extra,
    }
    return ProviderPool(providers, Catalog()), openai


def call_for(task_type: str, text: str):
    def request_for(spec):
        return CompletionRequest(
            model=spec.name, messages=({"role": "user", "content": text},), tier=spec.tier
        )

    return default_call(request_for)


async def route(router, text, task_type="analysis"):
    return await router.route(text, task_type, call_for(task_type, text))


def test_tiers_follow_complexity():
    """simple -> mini, medium -> standard, complex -> premium, each with its reasons."""
    router = ModelRouter(RouterConfig())
    assert router.choose(SIMPLE, "classification").tier == "mini"
    assert router.choose(MEDIUM, "analysis").tier == "standard"
    decision = router.choose(COMPLEX, "reasoning")
    assert decision.tier == "premium"
    assert decision.reasons[-1] == "complex -> premium"


def test_cost_optimization_off_starts_medium_and_complex_one_tier_higher():
    """Quality-first mode: medium starts on premium; simple stays on mini."""
    router = ModelRouter(RouterConfig(), cost_optimization_mode=False)
    assert router.choose(MEDIUM, "analysis").tier == "premium"
    assert router.choose(COMPLEX, "reasoning").tier == "premium"
    assert router.choose(SIMPLE, "classification").tier == "mini"
    router.cost_optimization_mode = True  # a plain, mutable attribute
    assert router.choose(MEDIUM, "analysis").tier == "standard"


async def test_confident_answer_is_not_escalated():
    """Confidence at or above the threshold: one call, no escalation."""
    pool, openai = pool_with({"gpt-4.1-nano": [0.9]})
    result = await route(ModelRouter(RouterConfig(), pool=pool), SIMPLE, "classification")
    assert result.models_tried == ("gpt-4.1-nano",)
    assert not result.escalated
    assert len(openai.calls) == 1


async def test_low_confidence_escalates_one_tier_at_a_time_until_premium():
    """Below the threshold the request climbs mini -> standard -> premium; cost sums all."""
    pool, _ = pool_with({"gpt-4.1-nano": [0.3], "gpt-4.1-mini": [0.5], "gpt-4.1": [0.6]})
    router = ModelRouter(RouterConfig(escalation_threshold=0.7), pool=pool)
    result = await route(router, SIMPLE, "classification")
    assert result.models_tried == ("gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1")
    assert result.spec.name == "gpt-4.1"  # premium is final even if still unsure
    assert result.escalated
    assert "0.30 < 0.70 on gpt-4.1-nano" in result.escalation_reason
    catalog = Catalog()
    usage = TokenUsage(input_tokens=1000, output_tokens=500)
    expected = sum((cost_usd(catalog.get(m), usage) for m in result.models_tried), Decimal("0"))
    assert result.cost_usd == expected
    assert result.usage.input_tokens == 3000


async def test_escalation_stops_at_the_first_confident_tier():
    """mini unsure, standard sure: two models tried."""
    pool, _ = pool_with({"gpt-4.1-nano": [0.5], "gpt-4.1-mini": [0.95]})
    result = await route(ModelRouter(RouterConfig(), pool=pool), SIMPLE, "classification")
    assert result.models_tried == ("gpt-4.1-nano", "gpt-4.1-mini")
    assert result.outcome.confidence.value == pytest.approx(0.95)


async def test_threshold_is_mutable_on_the_instance():
    """router.escalation_threshold = 0.4 stops escalating a 0.5 answer."""
    pool, _ = pool_with({"gpt-4.1-nano": [0.5], "gpt-4.1-mini": [0.95]})
    router = ModelRouter(RouterConfig(), pool=pool)
    router.escalation_threshold = 0.4
    result = await route(router, SIMPLE, "classification")
    assert result.models_tried == ("gpt-4.1-nano",)


async def test_escalation_disabled_keeps_the_first_answer():
    """enable_escalation=False never re-asks."""
    pool, _ = pool_with({"gpt-4.1-nano": [0.1]})
    router = ModelRouter(RouterConfig(enable_escalation=False), pool=pool)
    result = await route(router, SIMPLE, "classification")
    assert result.models_tried == ("gpt-4.1-nano",)
    assert not result.escalated


async def test_fallback_to_another_provider_of_the_same_tier():
    """OpenAI's mini fails: Anthropic's mini answers, both are in models_tried."""
    failing = ProviderOverloadedError("openai", 503, "unavailable")
    anthropic = ScriptedProvider("anthropic", {"claude-3-5-haiku-latest": [0.9]})
    pool, _ = pool_with({"gpt-4.1-nano": [failing]}, anthropic=anthropic)
    result = await route(ModelRouter(RouterConfig(), pool=pool), SIMPLE, "classification")
    assert result.spec.name == "claude-3-5-haiku-latest"
    assert result.spec.tier == "mini"
    assert result.models_tried == ("gpt-4.1-nano", "claude-3-5-haiku-latest")
    assert "503" in result.attempts[0].error
    assert result.attempts[0].cost_usd == 0


async def test_a_tier_with_every_provider_down_escalates_with_the_reason():
    """No mini provider answers: the router moves up to standard and says why."""
    failing = ProviderOverloadedError("openai", 500, "boom")
    pool, _ = pool_with({"gpt-4.1-nano": [failing], "gpt-4.1-mini": [0.9]})
    result = await route(ModelRouter(RouterConfig(), pool=pool), SIMPLE, "classification")
    assert result.spec.name == "gpt-4.1-mini"
    assert "all mini providers failed" in result.escalation_reason


async def test_everything_failing_raises_a_typed_error_with_metadata():
    """All tiers down: AllProvidersFailedError listing reasons, with partial metadata."""
    failing = ProviderOverloadedError("openai", 529, "overloaded")
    pool, _ = pool_with(
        {"gpt-4.1-nano": [failing], "gpt-4.1-mini": [failing], "gpt-4.1": [failing]}
    )
    with pytest.raises(AllProvidersFailedError) as info:
        await route(ModelRouter(RouterConfig(), pool=pool), SIMPLE, "classification")
    assert "529" in str(info.value)
    assert info.value.metadata["models_tried"] == ["gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"]
    assert info.value.metadata["complexity"] == "simple"


async def test_no_configured_provider_names_the_missing_keys():
    """Nothing configured: the error lists the familiar 'not set' messages."""
    pool = ProviderPool(
        {
            "openai": UnconfiguredProvider("openai", "OPENAI_API_KEY"),
            "anthropic": UnconfiguredProvider("anthropic", "ANTHROPIC_API_KEY"),
        },
        Catalog(),
    )
    with pytest.raises(
        AllProvidersFailedError, match="ANTHROPIC_API_KEY environment variable not set"
    ):
        await route(ModelRouter(RouterConfig(), pool=pool), SIMPLE, "classification")


class FakeLearned:
    def __init__(self, probability: float, *, in_domain: bool = True) -> None:
        self.probability = probability
        self.in_domain = in_domain
        self.seen: list[tuple[str, str]] = []

    def assess(self, text: str, task_type: str) -> Assessment:
        self.seen.append((text, task_type))
        return Assessment(self.probability, self.in_domain, 0.5 if self.in_domain else 0.9, 0.6)


@pytest.mark.parametrize(
    ("probability", "tier"), [(0.1, "mini"), (0.45, "standard"), (0.9, "premium")]
)
def test_learned_router_decides_the_tier_when_configured(probability, tier):
    """With a learned router the strong-model probability picks the tier, and says so."""
    learned = FakeLearned(probability)
    router = ModelRouter(RouterConfig(), learned_router=learned)
    decision = router.choose(COMPLEX if tier == "mini" else SIMPLE, "analysis")
    assert decision.tier == tier
    assert decision.strong_probability == probability
    assert any("learned router" in reason for reason in decision.reasons)
    assert learned.seen


def test_learned_router_decision_says_learned_and_why():
    """A prompt within the router's domain: router "learned", with the distance as reason."""
    decision = ModelRouter(RouterConfig(), learned_router=FakeLearned(0.9)).choose(SIMPLE)
    assert decision.router == "learned"
    assert "0.500 within the threshold 0.600" in decision.router_reason


def test_out_of_domain_prompt_falls_back_to_the_classifier():
    """Beyond the domain threshold the classifier's tier is used, and the decision says why."""
    learned = FakeLearned(0.9, in_domain=False)
    decision = ModelRouter(RouterConfig(), learned_router=learned).choose(SIMPLE, "classification")
    assert decision.tier == "mini"  # the classifier's tier, not the learned score's premium
    assert decision.router == "fallback"
    assert decision.router_reason.startswith("out of domain: distance")
    assert "beyond the threshold 0.600" in decision.router_reason


def test_out_of_domain_prompt_goes_to_the_configured_fallback_tier():
    """learned_fallback_tier (ROUTER_FALLBACK_TIER) overrides the classifier on fallback."""
    config = RouterConfig(learned_fallback_tier="standard")
    decision = ModelRouter(config, learned_router=FakeLearned(0.9, in_domain=False)).choose(SIMPLE)
    assert (decision.tier, decision.router) == ("standard", "fallback")


def test_without_a_learned_router_the_decision_says_heuristic():
    """No learned router configured: router "heuristic"."""
    assert ModelRouter(RouterConfig()).choose(SIMPLE).router == "heuristic"


def test_learned_router_path_is_loaded_lazily_and_failures_fall_back(tmp_path):
    """A configured path that cannot be loaded falls back to the classifier, with a reason."""
    router = ModelRouter(RouterConfig(learned_router_path=str(tmp_path / "missing.joblib")))
    decision = router.choose(SIMPLE, "classification")
    assert decision.tier == "mini"
    assert any("learned router unavailable" in reason for reason in decision.reasons)
    assert decision.router == "fallback"


def test_configured_learned_router_is_loaded_once_per_path(monkeypatch):
    """ROUTER_MODEL_PATH: engine.learned.load_router(path) is called lazily, once, and used."""
    loads: list[str] = []

    def load_router(path):
        loads.append(path)
        return FakeLearned(0.95)

    monkeypatch.setattr(router_module, "load_router", load_router)
    monkeypatch.setattr(router_module, "_learned_cache", {})
    config = RouterConfig(learned_router_path="/models/router.joblib")
    first = ModelRouter(config)
    assert loads == []  # nothing loaded before the first decision
    assert first.choose(SIMPLE, "classification").tier == "premium"
    assert ModelRouter(config).choose(SIMPLE, "classification").strong_probability == 0.95
    assert loads == ["/models/router.joblib"]
