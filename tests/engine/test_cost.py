"""Catalog and cost: genai-prices figures, Decimal, cached and reasoning tokens, overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing_platform.engine.catalog import (
    DEFAULT_MODELS,
    TIERS,
    Catalog,
    ModelSpec,
    next_tier,
    parse_compatible_models,
)
from routing_platform.engine.config import PriceOverride
from routing_platform.engine.cost import TokenUsage, check_priced, cost_usd
from routing_platform.engine.errors import UnknownModelError


@pytest.mark.parametrize("spec", DEFAULT_MODELS, ids=lambda spec: spec.name)
def test_every_default_model_has_a_genai_prices_price(spec):
    """Each catalog model resolves in genai-prices to a positive Decimal cost."""
    check_priced(spec)
    cost = cost_usd(spec, TokenUsage(input_tokens=1000, output_tokens=500))
    assert isinstance(cost, Decimal)
    assert cost > 0


def test_each_provider_has_all_three_tiers_priced_in_order():
    """mini < standard < premium in price, for OpenAI, Anthropic and Gemini."""
    catalog = Catalog()
    usage = TokenUsage(input_tokens=1000, output_tokens=1000)
    for provider in ("openai", "anthropic", "gemini"):
        costs = [cost_usd(catalog.models_for(tier, [provider])[0], usage) for tier in TIERS]
        assert costs == sorted(costs) and costs[0] < costs[-1], provider


def test_known_price_is_exact():
    """gpt-4.1-mini at $0.40 / $1.60 per million tokens: 1,000 in + 500 out = $0.0012."""
    spec = Catalog().get("gpt-4.1-mini")
    assert cost_usd(spec, TokenUsage(input_tokens=1000, output_tokens=500)) == Decimal("0.0012")


def test_cached_input_is_cheaper():
    """Cache reads are billed at the cache rate, so the same usage with cache costs less."""
    spec = Catalog().get("claude-haiku-4-5")
    plain = cost_usd(spec, TokenUsage(input_tokens=10_000, output_tokens=100))
    cached = cost_usd(
        spec, TokenUsage(input_tokens=10_000, output_tokens=100, cache_read_tokens=8_000)
    )
    assert cached < plain


def test_reasoning_tokens_are_billed_as_output():
    """Reasoning tokens are part of output tokens: they cost the output rate, not zero, not twice."""
    spec = Catalog().get("gemini-2.5-flash")
    with_reasoning = cost_usd(
        spec, TokenUsage(input_tokens=100, output_tokens=600, reasoning_tokens=500)
    )
    plain = cost_usd(spec, TokenUsage(input_tokens=100, output_tokens=600))
    assert with_reasoning == plain


def test_price_override_replaces_genai_prices():
    """A per-model override (USD per 1M tokens) is used instead of the package figures."""
    spec = Catalog().get("gpt-4.1")
    overrides = {
        "gpt-4.1": PriceOverride(Decimal("1"), Decimal("2"), cache_read_mtok=Decimal("0.5"))
    }
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=500_000)
    assert cost_usd(spec, usage, overrides) == Decimal("0.5") + Decimal("0.25") + Decimal("2")


def test_unknown_model_is_a_clear_error_not_zero():
    """A name the catalog does not know raises UnknownModelError naming it."""
    with pytest.raises(UnknownModelError, match="gpt-99"):
        Catalog().get("gpt-99")


def test_catalog_model_missing_from_genai_prices_is_an_error():
    """A model genai-prices cannot price, without an override, is never a silent $0."""
    spec = ModelSpec("made-up-model-x", "openai", "mini")
    with pytest.raises(UnknownModelError, match="made-up-model-x"):
        cost_usd(spec, TokenUsage(input_tokens=10, output_tokens=10))


def test_self_hosted_model_needs_an_override():
    """OpenAI-compatible models have no list price: an override (possibly $0) is required."""
    (spec,) = parse_compatible_models(["llama3:8b@standard"])
    assert spec.tier == "standard" and spec.name == "llama3:8b"
    with pytest.raises(UnknownModelError):
        cost_usd(spec, TokenUsage(input_tokens=10, output_tokens=10))
    zero = {"llama3:8b": PriceOverride(Decimal("0"), Decimal("0"))}
    assert cost_usd(spec, TokenUsage(input_tokens=10, output_tokens=10), zero) == 0


def test_compatible_model_entries_are_validated():
    """A bad tier in OPENAI_COMPATIBLE_MODELS says how to write it."""
    assert parse_compatible_models(["qwen2"])[0].tier == "mini"
    with pytest.raises(ValueError, match="name@tier"):
        parse_compatible_models(["qwen2@huge"])


def test_next_tier_stops_at_premium():
    """Escalation goes mini -> standard -> premium -> nowhere."""
    assert [next_tier(t) for t in TIERS] == ["standard", "premium", None]
