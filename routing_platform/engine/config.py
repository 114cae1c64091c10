"""The engine's configuration: one frozen dataclass, passed in, never read from the environment.

`routing_platform.runtime.router_config()` builds it from Django settings; tests and the
benchmarks build it directly. Arm router parameters of an experiment are applied with
`RouterConfig.with_overrides(...)`, which validates names and ranges.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from routing_platform.engine.errors import InvalidRequestError

PROVIDER_MODES = ("auto", "simulated", "real")

# Router parameters an experiment arm may override (its `router_params`); the rest of the
# configuration comes from settings only.
ARM_PARAMETERS = ("escalation_threshold", "enable_escalation", "cost_optimization_mode")


@dataclass(frozen=True)
class PriceOverride:
    """USD per million tokens for one model, replacing the genai-prices figures."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None


@dataclass(frozen=True)
class RouterConfig:
    # Routing policy.
    escalation_threshold: float = 0.7
    enable_escalation: bool = True
    cost_optimization_mode: bool = True
    enable_smart_routing: bool = True
    # Optional learned router (contract 6): a path, loaded lazily.
    learned_router_path: str = ""
    # Learned strong-model probability below `learned_mini_below` -> mini, at or above
    # `learned_premium_from` -> premium, in between -> standard.
    learned_mini_below: float = 0.3
    learned_premium_from: float = 0.6
    # A prompt outside the learned router's training domain goes to this tier; empty = the
    # complexity classifier decides.
    learned_fallback_tier: str = ""
    # Providers.
    provider_mode: str = "auto"
    simulation_seed: int = 0
    simulated_latency_ms: float = 0.0  # 0 = tier-dependent latency
    request_timeout_s: float = 60.0
    max_retries: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_cap_s: float = 20.0
    circuit_failure_threshold: int = 5
    circuit_reset_s: float = 30.0
    # Pricing: per-model overrides of the genai-prices figures.
    price_overrides: Any = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.escalation_threshold) <= 1.0:
            raise InvalidRequestError(
                f"escalation_threshold={self.escalation_threshold!r} is out of range: "
                "use a number between 0 and 1."
            )
        if self.provider_mode not in PROVIDER_MODES:
            raise InvalidRequestError(
                f"provider_mode={self.provider_mode!r} is not allowed: use auto, simulated or real."
            )
        if self.max_retries < 0:
            raise InvalidRequestError("max_retries must be 0 or more.")
        if self.request_timeout_s <= 0:
            raise InvalidRequestError("request_timeout_s must be positive.")
        if not isinstance(self.price_overrides, MappingProxyType):
            object.__setattr__(
                self, "price_overrides", MappingProxyType(dict(self.price_overrides))
            )

    def with_overrides(self, **overrides: Any) -> RouterConfig:
        """A copy with arm router parameters applied; unknown names and bad values are refused."""
        unknown = sorted(set(overrides) - set(ARM_PARAMETERS))
        if unknown:
            raise InvalidRequestError(
                f"unknown router parameter(s) {', '.join(unknown)}: "
                f"use {', '.join(ARM_PARAMETERS)}."
            )
        clean: dict[str, Any] = {}
        for name, value in overrides.items():
            if value is None:
                continue
            if name == "escalation_threshold":
                try:
                    clean[name] = float(value)
                except (TypeError, ValueError):
                    raise InvalidRequestError(
                        f"escalation_threshold={value!r} is not a number between 0 and 1."
                    ) from None
            else:
                if not isinstance(value, bool):
                    raise InvalidRequestError(f"{name}={value!r} must be true or false.")
                clean[name] = value
        return dataclasses.replace(self, **clean) if clean else self
