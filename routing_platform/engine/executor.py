"""Single-model execution: smart routing, the original (premium) path, and pass-through.

Every result is `{"response", "model", "provider", "_routing_metadata"}`. The baseline is
what the original path pays for the same work: the first configured provider's premium
model, priced on the same input and the final answer's output tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from routing_platform.engine.catalog import ModelSpec
from routing_platform.engine.classifier import TASK_TYPES
from routing_platform.engine.cost import TokenUsage, cost_usd
from routing_platform.engine.errors import InvalidRequestError, RoutingError
from routing_platform.engine.providers.base import CompletionRequest
from routing_platform.engine.router import (
    Attempt,
    CallFn,
    ModelRouter,
    RoutedResult,
    RoutingDecision,
    default_call,
)

STRATEGIES = ("smart_routing", "original_council")
# The vendors of the original council; self-hosted servers are not part of the baseline.
VENDOR_PROVIDERS = ("openai", "anthropic", "gemini")
_ROLES = {"system", "user", "assistant", "developer"}


def normalise_messages(
    text: str | None, messages: Sequence[dict] | None
) -> tuple[tuple[dict[str, str], ...], str]:
    """The chat messages and the text the classifier reads (the user turns)."""
    if messages:
        clean = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise InvalidRequestError(
                    f"messages[{index}] must be an object with role and content."
                )
            role, content = message.get("role"), message.get("content")
            if role not in _ROLES:
                raise InvalidRequestError(
                    f"messages[{index}].role={role!r} is not allowed: use system, developer, user or assistant."
                )
            if not isinstance(content, str):
                raise InvalidRequestError(f"messages[{index}].content must be a string.")
            # OpenAI's newer "developer" role is a system prompt for every other provider.
            clean.append({"role": "system" if role == "developer" else role, "content": content})
        if text:
            clean.append({"role": "user", "content": text})
        user_text = "\n".join(m["content"] for m in clean if m["role"] == "user")
        if not user_text.strip():
            raise InvalidRequestError("messages need at least one non-empty user message.")
        return tuple(clean), user_text
    if text is None or not str(text).strip():
        raise InvalidRequestError("text is empty: send the prompt as text or as messages.")
    return ({"role": "user", "content": str(text)},), str(text)


def validate_task_type(task_type: str) -> str:
    if task_type not in TASK_TYPES:
        raise InvalidRequestError(
            f"task_type={task_type!r} is not known: use one of {', '.join(TASK_TYPES)}."
        )
    return task_type


def savings(cost: Decimal, baseline: Decimal) -> dict[str, float]:
    saved = baseline - cost
    percentage = float(saved / baseline * 100) if baseline > 0 else 0.0
    return {"usd": float(saved), "percentage": round(percentage, 2)}


def baseline_spec(router: ModelRouter) -> ModelSpec:
    """The model the original path would have called: the first configured vendor premium
    model (a self-hosted OpenAI-compatible model is never the baseline)."""
    assert router.pool is not None
    candidates = [
        spec
        for spec in router.pool.candidates("premium") or router.pool.catalog.models_for("premium")
        if spec.provider in VENDOR_PROVIDERS
    ] or router.pool.catalog.models_for("premium", VENDOR_PROVIDERS)
    if not candidates:
        raise RoutingError("the catalog has no premium model to compare against")
    return candidates[0]


def routed_metadata(
    *,
    strategy: str,
    result: RoutedResult,
    baseline_cost: Decimal,
    simulated: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    decision = result.decision
    metadata: dict[str, Any] = {
        "strategy": strategy,
        "task_type": decision.classification.task_type,
        "complexity": decision.classification.complexity,
        "complexity_score": decision.classification.score,
        "reasons": list(decision.reasons),
        "router": decision.router,
        "router_reason": decision.router_reason,
        "tier": result.spec.tier,
        "initial_tier": decision.tier,
        "model": result.spec.name,
        "provider": result.outcome.provider,
        "models_tried": list(result.models_tried),
        "escalated": result.escalated,
        "escalation_reason": result.escalation_reason,
        "confidence": result.outcome.confidence.value,
        "confidence_method": result.outcome.confidence.method,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "cached_tokens": result.usage.cache_read_tokens,
        "reasoning_tokens": result.usage.reasoning_tokens,
        "cost": float(result.cost_usd),
        "baseline_cost": float(baseline_cost),
        "savings": savings(result.cost_usd, baseline_cost),
        "latency_ms": result.latency_ms,
        "simulated": simulated,
        "attempts": [
            {
                "model": a.model,
                "provider": a.provider,
                "tier": a.tier,
                "confidence": a.confidence,
                "cost": float(a.cost_usd),
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in result.attempts
        ],
    }
    if decision.strong_probability is not None:
        metadata["strong_probability"] = decision.strong_probability
    if extra:
        metadata.update(extra)
    return metadata


class Executor:
    """Runs one prompt by strategy: `smart_routing` (cascade), `original_council` (premium
    directly), or a named model (pass-through)."""

    def __init__(self, router: ModelRouter) -> None:
        self.router = router

    async def execute(
        self,
        *,
        text: str | None = None,
        messages: Sequence[dict] | None = None,
        task_type: str = "analysis",
        strategy: str = "smart_routing",
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> dict[str, Any]:
        if strategy not in STRATEGIES:
            raise InvalidRequestError(
                f"strategy={strategy!r} is not known: use {' or '.join(STRATEGIES)}."
            )
        validate_task_type(task_type)
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise InvalidRequestError("max_tokens must be a whole number of at least 1.")
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0.0 <= float(temperature) <= 2.0
        ):
            raise InvalidRequestError("temperature must be a number between 0 and 2.")
        chat, user_text = normalise_messages(text, messages)
        router = self.router
        pool = router.pool
        assert pool is not None

        def request_for(spec: ModelSpec) -> CompletionRequest:
            return CompletionRequest(
                model=spec.name,
                messages=chat,
                max_tokens=max_tokens,
                temperature=temperature,
                logprobs=True,
                tier=spec.tier,
                task_type=task_type,
            )

        call = default_call(request_for)
        decision = router.choose(user_text, task_type)
        baseline = baseline_spec(router)

        try:
            if model and model != "router":
                spec = pool.catalog.get(model)
                result = await self._single(decision, spec, call)
            elif strategy == "original_council":
                result = await self._single(decision, baseline, call, fallback_tier="premium")
            else:
                result = await router.route(user_text, task_type, call, decision=decision)
        except RoutingError as err:
            # What was known when it failed, for the call record.
            err.metadata.setdefault("strategy", strategy)
            err.metadata.setdefault("task_type", task_type)
            err.metadata.setdefault("complexity", decision.classification.complexity)
            err.metadata.setdefault("complexity_score", decision.classification.score)
            err.metadata.setdefault("tier", decision.tier)
            err.metadata.setdefault("baseline_model", baseline.name)
            if model and model != "router":
                err.metadata.setdefault("models_tried", [model])
            raise

        final_usage = result.outcome.single_call_usage
        baseline_cost = cost_usd(
            baseline,
            TokenUsage(
                input_tokens=final_usage.input_tokens, output_tokens=final_usage.output_tokens
            ),
            router.config.price_overrides,
        )
        if strategy == "original_council" and not model:
            baseline_cost = result.cost_usd
        metadata = routed_metadata(
            strategy=strategy,
            result=result,
            baseline_cost=baseline_cost,
            simulated=result.outcome.provider == "simulated",
            extra={"baseline_model": baseline.name},
        )
        return {
            "response": result.outcome.text,
            "model": result.spec.name,
            "provider": result.outcome.provider,
            "_routing_metadata": metadata,
        }

    async def _single(
        self,
        decision: RoutingDecision,
        spec: ModelSpec,
        call: CallFn,
        fallback_tier: str | None = None,
    ) -> RoutedResult:
        """One model, no escalation (the original path falls back across premium providers)."""
        pool = self.router.pool
        assert pool is not None
        if fallback_tier:
            spec, outcome, failures = await pool.call_tier(fallback_tier, call)
        else:
            outcome = await pool.call_model(spec, call)
            failures = []
        attempts = [ModelRouter.failed_attempt(failure, spec.tier) for failure in failures]
        cost = cost_usd(spec, outcome.usage, self.router.config.price_overrides)
        attempts.append(
            Attempt(
                spec.name,
                outcome.provider,
                spec.tier,
                outcome.confidence.value,
                cost,
                outcome.usage,
                outcome.latency_ms,
            )
        )
        return RoutedResult(
            decision=decision,
            spec=spec,
            outcome=outcome,
            attempts=tuple(attempts),
            escalated=False,
            escalation_reason="",
            cost_usd=cost,
            usage=outcome.usage,
            latency_ms=outcome.latency_ms,
            models_tried=tuple(a.model for a in attempts),
        )
