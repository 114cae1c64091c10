"""The model catalog: which models exist, their provider and tier, and their prices.

Tiers are `mini` < `standard` < `premium`. Prices are not written here: `cost.py` asks the
genai-prices package (its bundled snapshot, no network) unless `RouterConfig.price_overrides`
names the model. A model that is neither priced nor overridden is an `UnknownModelError`,
never a silent $0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from routing_platform.engine.errors import UnknownModelError

TIERS = ("mini", "standard", "premium")
PROVIDERS = ("openai", "anthropic", "gemini", "openai_compatible")
# The env var holding each provider's key, named in "not set" errors.
PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "openai_compatible": "OPENAI_COMPATIBLE_BASE_URL",
}
# genai-prices names Gemini's provider "google".
PRICE_PROVIDER_ID = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    provider: str
    tier: str
    # The reference genai-prices knows the model by (usually the name itself).
    price_ref: str = ""

    @property
    def price_provider_id(self) -> str | None:
        return PRICE_PROVIDER_ID.get(self.provider)


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gpt-4.1-nano", "openai", "mini"),
    ModelSpec("gpt-4.1-mini", "openai", "standard"),
    ModelSpec("gpt-4.1", "openai", "premium"),
    ModelSpec("claude-3-5-haiku-latest", "anthropic", "mini"),
    ModelSpec("claude-haiku-4-5", "anthropic", "standard"),
    ModelSpec("claude-sonnet-4-5", "anthropic", "premium"),
    ModelSpec("gemini-2.5-flash-lite", "gemini", "mini"),
    ModelSpec("gemini-2.5-flash", "gemini", "standard"),
    ModelSpec("gemini-2.5-pro", "gemini", "premium"),
)


@lru_cache(maxsize=256)
def context_window(spec: ModelSpec) -> int | None:
    """The model's context window (input tokens) from genai-prices' bundled model data, or
    None when it does not say (then no request is refused for its length)."""
    if spec.price_provider_id is None:
        return None
    from genai_prices.data_snapshot import get_snapshot  # heavy import: on first use only

    try:
        _, model = get_snapshot().find_provider_model(
            spec.price_ref or spec.name, None, spec.price_provider_id, None
        )
    except LookupError:
        return None
    return model.context_window


def next_tier(tier: str) -> str | None:
    index = TIERS.index(tier)
    return TIERS[index + 1] if index + 1 < len(TIERS) else None


def parse_compatible_models(entries: Iterable[str]) -> tuple[ModelSpec, ...]:
    """`OPENAI_COMPATIBLE_MODELS` entries: "name" (mini tier) or "name@tier"."""
    specs = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        name, _, tier = entry.rpartition("@") if "@" in entry else (entry, "", "mini")
        tier = tier or "mini"
        if tier not in TIERS:
            raise ValueError(
                f"OPENAI_COMPATIBLE_MODELS entry {entry!r}: tier {tier!r} must be one of "
                f"{', '.join(TIERS)} (write name@tier)."
            )
        specs.append(ModelSpec(name, "openai_compatible", tier))
    return tuple(specs)


class Catalog:
    """An ordered set of models; order within a tier is the preference order for fallback."""

    def __init__(self, models: Iterable[ModelSpec] = DEFAULT_MODELS) -> None:
        self._models: dict[str, ModelSpec] = {}
        for spec in models:
            if spec.tier not in TIERS:
                raise ValueError(f"model {spec.name}: tier {spec.tier!r} is not one of {TIERS}")
            self._models[spec.name] = spec

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self):
        return iter(self._models.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._models)

    def get(self, name: str) -> ModelSpec:
        try:
            return self._models[name]
        except KeyError:
            raise UnknownModelError(name, known=self.names) from None

    def models_for(self, tier: str, providers: Iterable[str] | None = None) -> list[ModelSpec]:
        """Models of a tier, in catalog order, optionally only for the given providers."""
        allowed = None if providers is None else set(providers)
        return [
            spec
            for spec in self._models.values()
            if spec.tier == tier and (allowed is None or spec.provider in allowed)
        ]

    def premium_for(self, provider: str) -> ModelSpec | None:
        for spec in self._models.values():
            if spec.provider == provider and spec.tier == "premium":
                return spec
        return None

    def with_models(self, extra: Iterable[ModelSpec]) -> Catalog:
        return Catalog([*self._models.values(), *extra])
