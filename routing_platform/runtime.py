"""The one bridge from Django settings to the pure engine (the engine never reads settings).

- `router_config(**overrides)`: a `RouterConfig` from settings, with arm router parameters.
- `run_execute(...)` / `run_evaluate(...)`: run one request by strategy and return the
  result with `_routing_metadata`.

Providers are built from settings: real clients for the keys that are set; the
deterministic simulator when `ROUTER_PROVIDER_MODE=simulated`, or in `auto` mode when no
key (and no OpenAI-compatible base URL) is set. One `httpx.AsyncClient` (over aiohttp,
`engine.providers.transport`) is kept per event loop (a client must not cross loops: each
RQ job runs its own), while circuit breakers are kept per process so that a failing provider stays skipped across jobs.
"""

from __future__ import annotations

import asyncio
import operator
import os
import threading
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Unpack

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from routing_platform.engine.catalog import DEFAULT_MODELS, Catalog, parse_compatible_models
from routing_platform.engine.config import PriceOverride, RouterConfig
from routing_platform.engine.council import OriginalCouncil, SmartCouncil
from routing_platform.engine.errors import InvalidRequestError
from routing_platform.engine.executor import (
    STRATEGIES,
    CallFields,
    ExecuteFields,
    Executor,
    StreamingRun,
)
from routing_platform.engine.providers.anthropic import AnthropicProvider
from routing_platform.engine.providers.base import Provider
from routing_platform.engine.providers.circuit import CircuitBreaker
from routing_platform.engine.providers.gemini import GeminiProvider
from routing_platform.engine.providers.openai import OpenAIProvider
from routing_platform.engine.providers.openai_compatible import OpenAICompatibleProvider
from routing_platform.engine.providers.pool import ProviderPool
from routing_platform.engine.providers.simulated import SimulatedProvider
from routing_platform.engine.providers.transport import upstream_client
from routing_platform.engine.router import ModelRouter

REAL_PROVIDERS = ("openai", "anthropic", "gemini")


def _settings():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    return settings


def _compatible_models(settings) -> tuple:
    if not settings.OPENAI_COMPATIBLE_BASE_URL:
        return ()
    try:
        return parse_compatible_models(settings.OPENAI_COMPATIBLE_MODELS)
    except ValueError as err:
        raise InvalidRequestError(str(err)) from None


def price_overrides_from(raw: Any) -> dict[str, PriceOverride]:
    """`ROUTER_PRICE_OVERRIDES` ({"model": {"input_mtok": .., "output_mtok": ..}}) validated."""
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("ROUTER_PRICE_OVERRIDES must be a JSON object keyed by model.")
    overrides: dict[str, PriceOverride] = {}
    for model, prices in raw.items():
        if isinstance(prices, PriceOverride):
            overrides[model] = prices
            continue
        try:
            values = {
                name: Decimal(str(prices[name])) if prices.get(name) is not None else None
                for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
            }
            if values["input_mtok"] is None or values["output_mtok"] is None:
                raise KeyError("input_mtok/output_mtok")
            if any(v is not None and (not v.is_finite() or v < 0) for v in values.values()):
                raise ValueError("negative")
        except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError):
            raise ImproperlyConfigured(
                f"ROUTER_PRICE_OVERRIDES[{model!r}] must be an object with input_mtok and "
                "output_mtok (USD per million tokens, >= 0), optionally cache_read_mtok and "
                "cache_write_mtok."
            ) from None
        overrides[model] = PriceOverride(**values)
    return overrides


# -- providers, per settings and per event loop ------------------------------------------


@dataclass(frozen=True)
class _ProviderSettings:
    mode: str
    openai_key: str
    anthropic_key: str
    gemini_key: str
    openai_base_url: str
    anthropic_base_url: str
    gemini_base_url: str
    compatible_base_url: str
    compatible_key: str
    compatible_models: tuple
    seed: int
    simulated_latency_ms: float
    timeout_s: float
    max_retries: int

    def __repr__(self) -> str:  # keys never show up in a repr
        return f"<_ProviderSettings mode={self.mode}>"

    @property
    def any_real_key(self) -> bool:
        return bool(
            self.openai_key or self.anthropic_key or self.gemini_key or self.compatible_base_url
        )

    @property
    def simulated(self) -> bool:
        return self.mode == "simulated" or (self.mode == "auto" and not self.any_real_key)


#: The `RouterConfig` fields read from settings as they are, each with its setting.
_ROUTER_CONFIG_SETTINGS = {
    "escalation_threshold": "ROUTER_ESCALATION_THRESHOLD",
    "enable_escalation": "ROUTER_ENABLE_ESCALATION",
    "cost_optimization_mode": "ROUTER_COST_OPTIMIZATION",
    "enable_smart_routing": "ENABLE_SMART_ROUTING",
    "learned_router_path": "ROUTER_MODEL_PATH",
    "learned_fallback_tier": "ROUTER_FALLBACK_TIER",
    "provider_mode": "ROUTER_PROVIDER_MODE",
    "simulation_seed": "ROUTER_SIMULATION_SEED",
    "simulated_latency_ms": "ROUTER_SIMULATED_LATENCY_MS",
    "request_timeout_s": "ROUTER_REQUEST_TIMEOUT_S",
    "max_retries": "ROUTER_MAX_RETRIES",
}
#: The provider keys and base URLs of `_ProviderSettings`, each with its setting.
_PROVIDER_KEY_SETTINGS = {
    "openai_key": "OPENAI_API_KEY",
    "anthropic_key": "ANTHROPIC_API_KEY",
    "gemini_key": "GEMINI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "gemini_base_url": "GEMINI_BASE_URL",
    "compatible_base_url": "OPENAI_COMPATIBLE_BASE_URL",
    "compatible_key": "OPENAI_COMPATIBLE_API_KEY",
}
# Every setting the two builders below read. Their results are cached per snapshot of these
# values (a tuple, compared on every call), so a call rebuilds nothing unless a setting
# changed, however it was changed (override_settings, monkeypatch, a reload).
_SETTING_NAMES = (*_ROUTER_CONFIG_SETTINGS.values(), *_PROVIDER_KEY_SETTINGS.values())
#: The `_ProviderSettings` fields that come from the `RouterConfig`, each with its field.
_PROVIDER_CONFIG_FIELDS = {
    "mode": "provider_mode",
    "seed": "simulation_seed",
    "simulated_latency_ms": "simulated_latency_ms",
    "timeout_s": "request_timeout_s",
    "max_retries": "max_retries",
}
#: Settings that may be missing (older settings modules), with the value then used.
_SETTING_DEFAULTS = {"ROUTER_SIMULATED_LATENCY_MS": 0.0}
_CACHE_LIMIT = 32
_configs: dict[tuple, RouterConfig] = {}
_provider_keys: dict[tuple, _ProviderSettings] = {}


_read_settings = operator.attrgetter(*_SETTING_NAMES)


def _settings_snapshot(settings) -> tuple | None:
    """The values the builders read, as a hashable tuple (None: not hashable, or a setting
    missing: no caching). Read from the settings object behind Django's lazy proxy (what
    the proxy's own attribute reads return, at a fraction of the cost)."""
    try:
        holder = settings._wrapped
        snapshot = (
            _read_settings(holder),
            tuple(getattr(holder, "OPENAI_COMPATIBLE_MODELS", None) or ()),
            repr(getattr(holder, "ROUTER_PRICE_OVERRIDES", None)),
        )
        hash(snapshot)
    except (AttributeError, TypeError):
        return None
    return snapshot


def _cache_put(cache: dict, key: tuple | None, value: Any) -> None:
    if key is not None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value


def _read(settings, table: dict[str, str]) -> dict[str, Any]:
    """``{field: the value of its setting}`` for a table of ``field: setting name``."""
    return {
        field: getattr(settings, name, _SETTING_DEFAULTS[name])
        if name in _SETTING_DEFAULTS
        else getattr(settings, name)
        for field, name in table.items()
    }


def _build_router_config(settings) -> RouterConfig:
    # Self-hosted models have no list price; they cost $0 at the API unless overridden.
    price_overrides = {
        spec.name: PriceOverride(Decimal("0"), Decimal("0"))
        for spec in _compatible_models(settings)
    }
    price_overrides.update(
        price_overrides_from(getattr(settings, "ROUTER_PRICE_OVERRIDES", None) or {})
    )
    return RouterConfig(**_read(settings, _ROUTER_CONFIG_SETTINGS), price_overrides=price_overrides)


def router_config(**overrides: Any) -> RouterConfig:
    """The engine configuration from settings, with arm router parameters applied."""
    settings = _settings()
    snapshot = _settings_snapshot(settings)
    config = _configs.get(snapshot) if snapshot is not None else None
    if config is None:
        config = _build_router_config(settings)
        _cache_put(_configs, snapshot, config)
    return config.with_overrides(**overrides) if overrides else config


def _provider_settings(config: RouterConfig) -> _ProviderSettings:
    settings = _settings()
    snapshot = _settings_snapshot(settings)
    from_config = {field: getattr(config, name) for field, name in _PROVIDER_CONFIG_FIELDS.items()}
    key = None
    if snapshot is not None:
        key = (snapshot, *from_config.values())
        provider_key = _provider_keys.get(key)
        if provider_key is not None:
            return provider_key
    provider_key = _ProviderSettings(
        **from_config,
        **_read(settings, _PROVIDER_KEY_SETTINGS),
        compatible_models=_compatible_models(settings),
    )
    _cache_put(_provider_keys, key, provider_key)
    return provider_key


_lock = threading.Lock()
_breakers: dict[_ProviderSettings, dict[str, CircuitBreaker]] = {}
_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_no_loop_pools: dict[_ProviderSettings, ProviderPool] = {}


def _catalog(key: _ProviderSettings) -> Catalog:
    if key.simulated or not key.compatible_base_url:
        return Catalog(DEFAULT_MODELS)
    # Self-hosted models come first in their tier: they are the cheapest to call.
    return Catalog([*key.compatible_models, *DEFAULT_MODELS])


def model_catalog() -> Catalog:
    """The models calls can use with the current settings (for model listings)."""
    return _catalog(_provider_settings(router_config()))


def _build_pool(key: _ProviderSettings, config: RouterConfig) -> ProviderPool:
    catalog = _catalog(key)

    vendors = {"openai": OpenAIProvider, "anthropic": AnthropicProvider, "gemini": GeminiProvider}
    if key.simulated:
        # One simulator per vendor, honouring the fields that vendor's translation does.
        providers: dict[str, Provider] = {
            name: SimulatedProvider(
                seed=key.seed,
                fixed_latency_ms=key.simulated_latency_ms,
                supports=vendors[name].supports,
            )
            for name in REAL_PROVIDERS
        }
    else:
        # httpx's API over aiohttp's pool and C parser: ~1 ms less CPU per upstream call
        # than httpx's own (pure-Python) transport (see providers/transport.py).
        client = upstream_client(timeout_s=key.timeout_s)
        common = {
            "client": client,
            "timeout_s": key.timeout_s,
            "max_retries": key.max_retries,
            "backoff_base_s": config.backoff_base_s,
            "backoff_max_s": config.backoff_max_s,
            "retry_after_cap_s": config.retry_after_cap_s,
        }
        providers = {
            "openai": OpenAIProvider(
                api_key=key.openai_key, base_url=key.openai_base_url, **common
            ),
            "anthropic": AnthropicProvider(
                api_key=key.anthropic_key, base_url=key.anthropic_base_url, **common
            ),
            "gemini": GeminiProvider(
                api_key=key.gemini_key, base_url=key.gemini_base_url, **common
            ),
        }
        if key.compatible_base_url:
            providers["openai_compatible"] = OpenAICompatibleProvider(
                api_key=key.compatible_key, base_url=key.compatible_base_url, **common
            )
    with _lock:
        breakers = _breakers.setdefault(key, {})
    return ProviderPool(
        providers,
        catalog,
        breakers=breakers,
        breaker_factory=lambda: CircuitBreaker(
            failure_threshold=config.circuit_failure_threshold,
            reset_after_s=config.circuit_reset_s,
        ),
    )


def provider_pool(config: RouterConfig | None = None) -> ProviderPool:
    """The pool for the current settings, cached per event loop."""
    config = config or router_config()
    key = _provider_settings(config)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    with _lock:
        cache = _no_loop_pools if loop is None else _pools.setdefault(loop, {})
        pool = cache.get(key)
    if pool is None:
        pool = _build_pool(key, config)
        with _lock:
            pool = cache.setdefault(key, pool)
    return pool


def reset() -> None:
    """Forget cached pools and circuit breakers (tests, settings changes)."""
    with _lock:
        _breakers.clear()
        _pools.clear()
        _no_loop_pools.clear()
    _configs.clear()
    _provider_keys.clear()


def simulated() -> bool:
    """Whether calls run on the simulator with the current settings."""
    return _provider_settings(router_config()).simulated


def _router(router_params: dict | None) -> ModelRouter:
    if router_params is not None and not isinstance(router_params, dict):
        raise InvalidRequestError("router_params must be an object of router parameters.")
    config = router_config(**(router_params or {}))
    return ModelRouter(config, pool=provider_pool(config))


def effective_strategy(strategy: str, config: RouterConfig | None = None) -> str:
    """`ENABLE_SMART_ROUTING=false` turns every smart request into the original (rollback)."""
    if strategy not in STRATEGIES:
        raise InvalidRequestError(
            f"strategy={strategy!r} is not known: use {' or '.join(STRATEGIES)}."
        )
    config = config or router_config()
    if strategy == "smart_routing" and not config.enable_smart_routing:
        return "original_council"
    return strategy


async def run_execute(
    *,
    strategy: str = "smart_routing",
    router_params: dict | None = None,
    **call: Unpack[ExecuteFields],
) -> dict:
    """Run one request (``Executor.execute``) with the arm's router parameters and the
    strategy in effect (see `effective_strategy`)."""
    router = _router(router_params)
    strategy = effective_strategy(strategy, router.config)
    return await Executor(router).execute(strategy=strategy, **call)


def streams_through(model: str | None) -> bool:
    """Whether a streamed call relays the upstream's tokens as they arrive: a named model,
    or routing without escalation (which needs the whole weak answer to judge it; with
    escalation on, or smart routing rolled back to the original path, it is buffered)."""
    if model and model != "router":
        return True
    config = router_config()
    return not config.enable_escalation and config.enable_smart_routing


async def run_stream(**call: Unpack[CallFields]) -> StreamingRun:
    """Open a streamed answer (see `Executor.stream`)."""
    return await Executor(_router(None)).stream(**call)


async def run_evaluate(
    *,
    script: str,
    niche: str = "general",
    strategy: str = "smart_routing",
    router_params: dict | None = None,
) -> dict:
    router = _router(router_params)
    if effective_strategy(strategy, router.config) == "original_council":
        return await OriginalCouncil(router).evaluate_script(script, niche)
    return await SmartCouncil(router).evaluate_script(script, niche)
