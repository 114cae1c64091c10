"""Cost in USD, as `Decimal`, from the usage a provider reported.

Usage is normalised by the provider adapters to genai-prices' convention:
`input_tokens` counts every prompt token *including* cache reads and writes, and
`output_tokens` counts every generated token *including* reasoning tokens. Cached input is
then billed at the cache-read rate and reasoning at the output rate by genai-prices.

Prices come from the genai-prices package's bundled snapshot (no network call), keyed by
the model's name and provider. `RouterConfig.price_overrides` (USD per million tokens)
replaces them per model. A model without either is an `UnknownModelError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from routing_platform.engine.catalog import ModelSpec
from routing_platform.engine.config import PriceOverride
from routing_platform.engine.errors import UnknownModelError

MILLION = Decimal(1_000_000)
ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0  # all prompt tokens, cached ones included
    output_tokens: int = 0  # all generated tokens, reasoning included
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


def _override_cost(price: PriceOverride, usage: TokenUsage) -> Decimal:
    cache_read_rate = (
        price.cache_read_mtok if price.cache_read_mtok is not None else price.input_mtok
    )
    cache_write_rate = (
        price.cache_write_mtok if price.cache_write_mtok is not None else price.input_mtok
    )
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    total = (
        uncached * price.input_mtok
        + usage.cache_read_tokens * cache_read_rate
        + usage.cache_write_tokens * cache_write_rate
        + usage.output_tokens * price.output_mtok
    )
    return total / MILLION


@lru_cache(maxsize=4096)
def _genai_price(
    price_ref: str,
    provider_id: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    reasoning_tokens: int,
) -> Decimal:
    from genai_prices import Usage, calc_price  # heavy import: only when a price is needed

    fields = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_read_tokens:
        fields["cache_read_tokens"] = cache_read_tokens
    if cache_write_tokens:
        fields["cache_write_tokens"] = cache_write_tokens
    if reasoning_tokens:
        fields["output_reasoning_tokens"] = reasoning_tokens
    result = calc_price(Usage(**fields), price_ref, provider_id=provider_id)
    return Decimal(result.total_price)


def cost_usd(
    spec: ModelSpec,
    usage: TokenUsage,
    overrides: Mapping[str, PriceOverride] | None = None,
) -> Decimal:
    """What `usage` on `spec` costs, in USD."""
    if overrides and spec.name in overrides:
        return _override_cost(overrides[spec.name], usage)
    if spec.price_provider_id is None:
        raise UnknownModelError(
            spec.name,
            metadata={"hint": "self-hosted models need a price override (USD per 1M tokens)"},
        )
    try:
        return _genai_price(
            spec.price_ref or spec.name,
            spec.price_provider_id,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        )
    except LookupError as err:
        raise UnknownModelError(spec.name) from err


def check_priced(spec: ModelSpec, overrides: Mapping[str, PriceOverride] | None = None) -> None:
    """Raise `UnknownModelError` now, at start-up, rather than after a paid call."""
    cost_usd(spec, TokenUsage(input_tokens=1, output_tokens=1), overrides)
