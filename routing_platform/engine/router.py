"""The router: classify, pick a tier, call it, escalate one tier up while confidence is low.

    simple -> mini, medium -> standard, complex -> premium
    cost_optimization_mode=False starts medium and complex one tier higher (capped at premium)
    a learned router (contract 6), when configured, replaces the tier choice by its score:
    premium from the artifact's calibrated threshold (else `learned_premium_from`). A
    prompt unlike the router's training prompts (beyond its domain threshold in embedding
    space, or any prompt while most recent ones are) is routed by the prompt-length rule
    (the classifier for artifacts without one), or goes to `learned_fallback_tier` when
    set; the decision says which (`router`: "learned" | "fallback" | "heuristic") and why.

The cascade: call the tier (falling back across providers of that tier); if the answer's
confidence is below `escalation_threshold` and escalation is enabled, re-ask one tier up,
until premium. If every provider of a tier fails, the router also moves one tier up
(the reason says so). Every model called is kept in `models_tried`; cost sums all
attempts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from routing_platform.engine import confidence as confidence_mod
from routing_platform.engine.catalog import TIERS, ModelSpec, next_tier
from routing_platform.engine.classifier import Classification, classify
from routing_platform.engine.config import RouterConfig
from routing_platform.engine.cost import TokenUsage, cost_usd
from routing_platform.engine.errors import AllProvidersFailedError, RoutingError
from routing_platform.engine.learned import load_router
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    Provider,
)
from routing_platform.engine.providers.pool import ProviderPool

logger = logging.getLogger(__name__)

COMPLEXITY_TIER = {"simple": "mini", "medium": "standard", "complex": "premium"}

_learned_lock = threading.Lock()
_learned_cache: dict[str, Any] = {}


def load_learned_router(path: str) -> Any:
    """Load (once per path, per process) learned router artifact (``ROUTER_MODEL_PATH``)."""
    with _learned_lock:
        if path not in _learned_cache:
            _learned_cache[path] = load_router(path)
        return _learned_cache[path]


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    classification: Classification
    tier: str
    reasons: tuple[str, ...]
    strong_probability: float | None = None
    router: str = "heuristic"  # "learned" | "fallback" | "heuristic" (no learned router)
    router_reason: str = ""


@dataclass(frozen=True)
class CallOutcome:
    """What one model call produced, as judged by the caller's assessment."""

    text: str
    usage: TokenUsage
    confidence: confidence_mod.ConfidenceEstimate
    provider: str
    latency_ms: float = 0.0
    payload: Any = None
    error: str = ""  # e.g. "answer was not valid JSON after one repair"
    calls: int = 1
    # Usage of the first request alone (a repair adds a second): what a baseline prices.
    first_usage: TokenUsage | None = None

    @property
    def single_call_usage(self) -> TokenUsage:
        return self.first_usage if self.first_usage is not None else self.usage


@dataclass(frozen=True)
class Attempt:
    model: str
    provider: str
    tier: str
    confidence: float | None
    cost_usd: Decimal
    usage: TokenUsage
    latency_ms: float
    error: str = ""


@dataclass(frozen=True)
class RoutedResult:
    decision: RoutingDecision
    spec: ModelSpec
    outcome: CallOutcome
    attempts: tuple[Attempt, ...]
    escalated: bool
    escalation_reason: str
    cost_usd: Decimal
    usage: TokenUsage
    latency_ms: float
    models_tried: tuple[str, ...] = field(default=())


CallFn = Callable[[ModelSpec, Provider], Awaitable[CallOutcome]]


class ModelRouter:
    """Routes requests. `escalation_threshold`, `cost_optimization_mode` and
    `enable_escalation` are plain attributes: change them at any time."""

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        pool: ProviderPool | None = None,
        escalation_threshold: float | None = None,
        cost_optimization_mode: bool | None = None,
        enable_escalation: bool | None = None,
        learned_router: Any = None,
    ) -> None:
        self.config = config or RouterConfig()
        self._pool = pool
        self.escalation_threshold = (
            self.config.escalation_threshold
            if escalation_threshold is None
            else float(escalation_threshold)
        )
        self.cost_optimization_mode = (
            self.config.cost_optimization_mode
            if cost_optimization_mode is None
            else bool(cost_optimization_mode)
        )
        self.enable_escalation = (
            self.config.enable_escalation if enable_escalation is None else bool(enable_escalation)
        )
        self._learned_router = learned_router

    @property
    def pool(self) -> ProviderPool | None:
        return self._pool

    @pool.setter
    def pool(self, value: ProviderPool | None) -> None:
        self._pool = value

    # -- the decision (pure, fast) -------------------------------------------------------

    def learned_router(self) -> Any:
        if self._learned_router is None and self.config.learned_router_path:
            self._learned_router = load_learned_router(self.config.learned_router_path)
        return self._learned_router

    def choose(self, text: str, task_type: str = "analysis") -> RoutingDecision:
        """Classify and pick the starting tier, with the reasons."""
        classification = classify(text, task_type)
        reasons = list(classification.reasons)
        strong_probability = None
        learned = None
        router, router_reason = "heuristic", "no learned router configured"
        if self.config.learned_router_path or self._learned_router is not None:
            try:
                learned = self.learned_router()
            except Exception as err:  # a broken model file must not take routing down
                logger.warning("learned router unavailable, using the classifier: %s", err)
                reasons.append(f"learned router unavailable ({type(err).__name__})")
                router, router_reason = "fallback", f"learned router unavailable: {err}"
        tier = COMPLEXITY_TIER[classification.complexity]
        scored = False  # the tier comes from a score: the learned one, or the length rule's
        if learned is not None:
            assessment = learned.assess(text, classification.task_type)
            strong_probability = float(assessment.score)
            if assessment.in_domain:
                tier = self._learned_tier(learned, strong_probability, reasons)
                router, router_reason, scored = "learned", assessment.reason, True
            else:
                router, router_reason = "fallback", f"out of domain: {assessment.reason}"
                reasons.append(f"learned router: prompt {router_reason}")
                if assessment.fallback_score is not None and not self.config.learned_fallback_tier:
                    # The prompt-length rule, on the learned score's scale (engine/learned/ood.py).
                    tier = self._learned_tier(
                        learned, assessment.fallback_score, reasons, "prompt-length rule"
                    )
                    scored = True
        if not scored:
            if router == "fallback" and self.config.learned_fallback_tier:
                tier = self.config.learned_fallback_tier
                reasons.append(f"fallback tier {tier}")
            else:
                reasons.append(f"{classification.complexity} -> {tier}")
        if not self.cost_optimization_mode and classification.complexity != "simple":
            higher = next_tier(tier)
            if higher:
                reasons.append(f"cost optimization off: {tier} -> {higher}")
                tier = higher
        return RoutingDecision(
            classification, tier, tuple(reasons), strong_probability, router, router_reason
        )

    def _learned_tier(
        self,
        learned: Any,
        strong_probability: float,
        reasons: list[str],
        scorer: str = "learned router",
    ) -> str:
        # The artifact's calibrated threshold (train-router --target-*) is the premium cut;
        # a router without one uses the configured cut.
        premium_from = getattr(learned, "threshold", None)
        if premium_from is None:
            premium_from = self.config.learned_premium_from
        if strong_probability >= premium_from:
            tier = "premium"
        elif strong_probability < self.config.learned_mini_below:
            tier = "mini"
        else:
            tier = "standard"
        reasons.append(
            f"{scorer}: score {strong_probability:.2f} (premium from {premium_from:.2f})"
        )
        return tier

    # -- the cascade ---------------------------------------------------------------------

    async def route(
        self,
        text: str,
        task_type: str,
        call: CallFn,
        *,
        decision: RoutingDecision | None = None,
        accept: Callable[[ModelSpec], bool] | None = None,
    ) -> RoutedResult:
        if self.pool is None:
            raise RoutingError("this router has no providers: pass pool=ProviderPool(...)")
        decision = decision or self.choose(text, task_type)
        tier: str | None = decision.tier
        attempts: list[Attempt] = []
        escalation_reasons: list[str] = []
        best: tuple[ModelSpec, CallOutcome] | None = None
        last_error: RoutingError | None = None

        while tier is not None:
            try:
                spec, outcome, failures = await self.pool.call_tier(tier, call, accept)
            except AllProvidersFailedError as err:
                for failure in getattr(err, "failures", []):
                    attempts.append(self.failed_attempt(failure, tier))
                last_error = err
                higher = next_tier(tier)
                if best is not None:
                    escalation_reasons.append(
                        f"all {tier} providers failed; kept the {best[0].tier} answer"
                    )
                    break
                if higher is None:
                    break
                escalation_reasons.append(f"all {tier} providers failed")
                tier = higher
                continue
            for failure in failures:
                attempts.append(self.failed_attempt(failure, tier))
            cost = cost_usd(spec, outcome.usage, self.config.price_overrides)
            attempts.append(
                Attempt(
                    spec.name,
                    outcome.provider,
                    tier,
                    outcome.confidence.value,
                    cost,
                    outcome.usage,
                    outcome.latency_ms,
                    outcome.error,
                )
            )
            best = (spec, outcome)
            higher = next_tier(tier)
            value = outcome.confidence.value
            if value >= self.escalation_threshold or higher is None:
                break
            if not self.enable_escalation:
                break
            escalation_reasons.append(
                f"confidence {value:.2f} < {self.escalation_threshold:.2f} on {spec.name}"
                + (f" ({outcome.error})" if outcome.error else "")
            )
            tier = higher

        metadata = self._partial_metadata(decision, attempts, escalation_reasons)
        if best is None:
            assert last_error is not None
            last_error.metadata.update(metadata)
            raise last_error
        spec, outcome = best
        total_usage = TokenUsage()
        for attempt in attempts:
            total_usage = total_usage + attempt.usage
        return RoutedResult(
            decision=decision,
            spec=spec,
            outcome=outcome,
            attempts=tuple(attempts),
            escalated=bool(escalation_reasons),
            escalation_reason="; ".join(escalation_reasons),
            cost_usd=sum((a.cost_usd for a in attempts), Decimal("0")),
            usage=total_usage,
            latency_ms=round(sum(a.latency_ms for a in attempts), 3),
            models_tried=tuple(a.model for a in attempts),
        )

    @staticmethod
    def failed_attempt(failure: Any, tier: str) -> Attempt:
        return Attempt(
            failure.model,
            failure.provider,
            tier,
            None,
            Decimal("0"),
            TokenUsage(),
            0.0,
            str(failure.error),
        )

    @staticmethod
    def _partial_metadata(
        decision: RoutingDecision, attempts: list[Attempt], reasons: list[str]
    ) -> dict[str, Any]:
        return {
            "task_type": decision.classification.task_type,
            "complexity": decision.classification.complexity,
            "complexity_score": decision.classification.score,
            "tier": attempts[-1].tier if attempts else decision.tier,
            "models_tried": [a.model for a in attempts],
            "escalated": bool(reasons),
            "escalation_reason": "; ".join(reasons),
            "cost": float(sum((a.cost_usd for a in attempts), Decimal("0"))),
        }


def default_call(
    request_for: Callable[[ModelSpec], CompletionRequest],
) -> CallFn:
    """A `CallFn` that completes one request and rates it with `confidence.estimate`."""

    async def call(spec: ModelSpec, provider: Provider) -> CallOutcome:
        response = await provider.complete(request_for(spec))
        return outcome_of(response)

    return call


def outcome_of(response: CompletionResponse) -> CallOutcome:
    """A completion rated by `confidence.estimate` (a tool call counts as an answer)."""
    rated_text = response.text or "".join(
        call["function"]["name"] + call["function"]["arguments"] for call in response.tool_calls
    )
    estimate = confidence_mod.estimate(
        rated_text, finish_reason=response.finish_reason, logprobs=response.logprobs
    )
    return CallOutcome(
        text=response.text,
        usage=response.usage,
        confidence=estimate,
        provider=response.provider,
        latency_ms=response.latency_ms,
        payload=response,
    )


__all__ = [
    "TIERS",
    "Attempt",
    "CallOutcome",
    "ModelRouter",
    "RoutedResult",
    "RoutingDecision",
    "default_call",
]
