"""Single-model execution: smart routing, the original (premium) path, and pass-through.

Every result is `{"response", "model", "provider", "_routing_metadata"}`. The baseline is
what the original path pays for the same work: the first configured provider's premium
model, priced on the same input and the final answer's output tokens.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypedDict

from routing_platform.engine.catalog import ModelSpec, context_window, next_tier
from routing_platform.engine.chat import (
    ChatOptions,
    StreamAccumulator,
    StreamDelta,
    UnsupportedFieldError,
    check_supported,
    message_text,
)
from routing_platform.engine.classifier import TASK_TYPES
from routing_platform.engine.config import PriceOverride
from routing_platform.engine.cost import TokenUsage, cost_usd
from routing_platform.engine.errors import (
    AllProvidersFailedError,
    InvalidRequestError,
    RoutingError,
)
from routing_platform.engine.providers.base import CompletionRequest, CompletionResponse, Provider
from routing_platform.engine.router import (
    Attempt,
    CallFn,
    CallOutcome,
    ModelRouter,
    RoutedResult,
    RoutingDecision,
    default_call,
    outcome_of,
)

STRATEGIES = ("smart_routing", "original_council")


class CallFields(TypedDict, total=False):
    """The keyword arguments of one call to :meth:`Executor.stream` (``messages``
    required), and with ``text`` those of :meth:`Executor.execute` besides the strategy:
    what ``routing_platform.runtime`` forwards."""

    messages: Sequence[dict] | None
    task_type: str
    model: str | None
    max_tokens: int | None
    temperature: float | None
    options: ChatOptions | None


class ExecuteFields(CallFields, total=False):
    text: str | None


# The vendors of the original council; self-hosted servers are not part of the baseline.
VENDOR_PROVIDERS = ("openai", "anthropic", "gemini")
_ROLES = {"system", "user", "assistant", "developer"}
CHARS_PER_TOKEN = 4  # the prompt's size in tokens, estimated for the context-window check


def single_model_result(
    decision: RoutingDecision,
    spec: ModelSpec,
    outcome: CallOutcome,
    failed: Sequence[Attempt],
    price_overrides: Mapping[str, PriceOverride] | None,
) -> RoutedResult:
    """The result of ``spec`` answering without escalation, after the ``failed``
    attempts (a provider fallback), its cost priced with ``price_overrides``."""
    cost = cost_usd(spec, outcome.usage, price_overrides)
    answer = Attempt(
        spec.name,
        outcome.provider,
        spec.tier,
        outcome.confidence.value,
        cost,
        outcome.usage,
        outcome.latency_ms,
    )
    attempts = (*failed, answer)
    return RoutedResult(
        decision,
        spec,
        outcome,
        attempts,
        escalated=False,
        escalation_reason="",
        cost_usd=cost,
        usage=outcome.usage,
        latency_ms=outcome.latency_ms,
        models_tried=tuple(a.model for a in attempts),
    )


def prompt_tokens_estimate(options: ChatOptions | None, chat: Sequence[dict]) -> int:
    messages = options.messages if options is not None else chat
    return sum(len(message_text(dict(m))) for m in messages) // CHARS_PER_TOKEN


def capability_filter(
    providers: dict[str, Provider],
    options: ChatOptions | None,
    tokens_needed: int,
) -> Callable[[ModelSpec], bool]:
    """Which models can serve the request: their provider honours every field it uses, and
    their context window (genai-prices) fits the prompt plus max_tokens."""
    used = frozenset(options.fields_used()) if options is not None else frozenset()

    def accept(spec: ModelSpec) -> bool:
        provider = providers.get(spec.provider)
        if provider is None or not used <= provider.supports:
            return False
        window = context_window(spec)
        return window is None or tokens_needed <= window

    return accept


def check_model_can_serve(
    spec: ModelSpec, provider: Provider, options: ChatOptions | None, tokens_needed: int
) -> None:
    """A named model that cannot serve the request is a 400 naming why."""
    check_supported(options, provider.supports, spec.name)
    window = context_window(spec)
    if window is not None and tokens_needed > window:
        raise UnsupportedFieldError(
            "messages",
            spec.name,
            f"about {tokens_needed} tokens of prompt plus max_tokens exceed its "
            f"{window}-token context window",
        )


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


def validate_call(
    strategy: str, task_type: str, max_tokens: int | None, temperature: float | None
) -> None:
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


@dataclass
class StreamingRun:
    """An answer streaming from the one model chosen for it: iterate ``deltas()``, then
    ``result()`` is the call's result (as ``Executor.execute`` returns it) from what
    arrived, also when the stream was cut short."""

    executor: Executor
    decision: RoutingDecision
    spec: ModelSpec
    provider: Provider
    first: StreamDelta
    rest: AsyncIterator[StreamDelta]
    strategy: str
    model: str | None
    baseline: ModelSpec
    started: float
    failed: tuple[Attempt, ...] = ()
    accumulator: StreamAccumulator = field(default_factory=StreamAccumulator)

    @property
    def relays_tokens(self) -> bool:
        """Whether tokens are relayed as the upstream sends them (else in one piece)."""
        return bool(getattr(self.provider, "streams", False))

    async def deltas(self) -> AsyncIterator[StreamDelta]:
        self.accumulator.add(self.first)
        yield self.first
        async for delta in self.rest:
            self.accumulator.add(delta)
            yield delta

    async def aclose(self) -> None:
        """Stop reading the upstream (the client went away)."""
        aclose = getattr(self.rest, "aclose", None)
        if aclose is not None:
            await aclose()

    def result(self) -> dict[str, Any]:
        acc = self.accumulator
        token_logprobs = tuple(acc.token_logprobs) or None
        response = CompletionResponse(
            text=acc.text,
            model=acc.model or self.spec.name,
            provider=self.provider.name,
            usage=acc.usage,
            finish_reason=acc.finish_reason or "stop",
            logprobs=tuple(float(t["logprob"]) for t in token_logprobs or ()) or None,
            latency_ms=round((time.perf_counter() - self.started) * 1000.0, 3),
            tool_calls=acc.tool_calls,
            token_logprobs=token_logprobs,
        )
        routed = single_model_result(
            self.decision,
            self.spec,
            outcome_of(response),
            self.failed,
            self.executor.router.config.price_overrides,
        )
        return self.executor._result(
            routed, strategy=self.strategy, model=self.model, baseline=self.baseline, gateway=True
        )


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
        options: ChatOptions | None = None,
    ) -> dict[str, Any]:
        validate_call(strategy, task_type, max_tokens, temperature)
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
                options=options,
                tier=spec.tier,
                task_type=task_type,
            )

        call = default_call(request_for)
        decision = router.choose(user_text, task_type)
        baseline = baseline_spec(router)
        tokens_needed = prompt_tokens_estimate(options, chat) + (max_tokens or 0)
        accept = capability_filter(pool.providers, options, tokens_needed)

        try:
            if model and model != "router":
                spec = pool.catalog.get(model)
                check_model_can_serve(spec, pool.provider_for(spec), options, tokens_needed)
                result = await self._single(decision, spec, call)
            elif strategy == "original_council":
                result = await self._single(
                    decision, baseline, call, fallback_tier="premium", accept=accept
                )
            else:
                self._check_any_capable(options, accept)
                result = await router.route(
                    user_text, task_type, call, decision=decision, accept=accept
                )
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

        return self._result(
            result, strategy=strategy, model=model, baseline=baseline, gateway=options is not None
        )

    async def stream(
        self,
        *,
        messages: Sequence[dict],
        task_type: str = "analysis",
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        options: ChatOptions | None = None,
    ) -> StreamingRun:
        """Open a streamed answer from one model, without escalation: the named model, or
        the first capable model of the tier the router chooses (falling back across
        providers, and up the tiers, only until the first piece has arrived)."""
        validate_call("smart_routing", task_type, max_tokens, temperature)
        chat, user_text = normalise_messages(None, messages)
        router = self.router
        pool = router.pool
        assert pool is not None
        decision = router.choose(user_text, task_type)
        baseline = baseline_spec(router)
        tokens_needed = prompt_tokens_estimate(options, chat) + (max_tokens or 0)
        accept = capability_filter(pool.providers, options, tokens_needed)

        async def open_stream(spec: ModelSpec, provider: Provider):
            request = CompletionRequest(
                model=spec.name,
                messages=chat,
                max_tokens=max_tokens,
                temperature=temperature,
                logprobs=bool(options and options.logprobs),
                options=options,
                tier=spec.tier,
                task_type=task_type,
            )
            rest = provider.stream(request).__aiter__()
            try:
                first = await anext(rest)
            except StopAsyncIteration:
                first = StreamDelta()
            return provider, first, rest

        started = time.perf_counter()
        failed: list[Attempt] = []
        try:
            if model and model != "router":
                spec = pool.catalog.get(model)
                check_model_can_serve(spec, pool.provider_for(spec), options, tokens_needed)
                provider, first, rest = await pool.call_model(spec, open_stream)
            else:
                self._check_any_capable(options, accept)
                spec, (provider, first, rest) = await self._open_in_tiers(
                    decision.tier, open_stream, accept, failed
                )
        except RoutingError as err:
            err.metadata.setdefault("strategy", "smart_routing")
            err.metadata.setdefault("task_type", task_type)
            err.metadata.setdefault("tier", decision.tier)
            if model and model != "router":
                err.metadata.setdefault("models_tried", [model])
            raise
        return StreamingRun(
            executor=self,
            decision=decision,
            spec=spec,
            provider=provider,
            first=first,
            rest=rest,
            strategy="smart_routing",
            model=model,
            baseline=baseline,
            started=started,
            failed=tuple(failed),
        )

    async def _open_in_tiers(
        self, tier: str | None, call: Any, accept: Callable[[ModelSpec], bool], failed: list
    ) -> tuple[ModelSpec, Any]:
        """The first tier from ``tier`` up with a model that answers ``call``."""
        pool = self.router.pool
        assert pool is not None
        last_error: RoutingError | None = None
        while tier is not None:
            try:
                spec, opened, failures = await pool.call_tier(tier, call, accept)
            except AllProvidersFailedError as err:
                failed.extend(
                    ModelRouter.failed_attempt(f, tier) for f in getattr(err, "failures", [])
                )
                last_error, tier = err, next_tier(tier)
                continue
            failed.extend(ModelRouter.failed_attempt(f, tier) for f in failures)
            return spec, opened
        assert last_error is not None
        raise last_error

    def _check_any_capable(
        self, options: ChatOptions | None, accept: Callable[[ModelSpec], bool]
    ) -> None:
        """Route mode with no configured model able to serve the request: a 400."""
        pool = self.router.pool
        assert pool is not None
        tiers = ("mini", "standard", "premium")
        if not any(pool.candidates(tier) for tier in tiers):
            return  # nothing configured at all: the pool's error names the missing keys
        if any(pool.candidates(tier, accept) for tier in tiers):
            return
        used = options.fields_used() if options is not None else ()
        for name in used:
            if not any(name in pool.providers[p].supports for p in pool.configured_providers()):
                raise UnsupportedFieldError(name, "any configured model")
        raise UnsupportedFieldError(
            "messages", "any configured model", "the prompt plus max_tokens is too long"
        )

    def _result(
        self,
        result: RoutedResult,
        *,
        strategy: str,
        model: str | None,
        baseline: ModelSpec,
        gateway: bool = False,
    ) -> dict[str, Any]:
        """The call's result: response, model, provider, metadata; for a gateway call (one
        with `ChatOptions`) also its finish reason, tool calls and token logprobs."""
        router = self.router
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
        answer: dict[str, Any] = {
            "response": result.outcome.text,
            "model": result.spec.name,
            "provider": result.outcome.provider,
            "_routing_metadata": metadata,
        }
        completion = result.outcome.payload
        if gateway and isinstance(completion, CompletionResponse):
            answer["finish_reason"] = completion.finish_reason or "stop"
            answer["tool_calls"] = list(completion.tool_calls)
            answer["logprobs"] = (
                list(completion.token_logprobs) if completion.token_logprobs else None
            )
        return answer

    async def _single(
        self,
        decision: RoutingDecision,
        spec: ModelSpec,
        call: CallFn,
        fallback_tier: str | None = None,
        accept: Callable[[ModelSpec], bool] | None = None,
    ) -> RoutedResult:
        """One model, no escalation (the original path falls back across premium providers)."""
        pool = self.router.pool
        assert pool is not None
        if fallback_tier:
            spec, outcome, failures = await pool.call_tier(fallback_tier, call, accept)
        else:
            outcome = await pool.call_model(spec, call)
            failures = []
        failed = [ModelRouter.failed_attempt(failure, spec.tier) for failure in failures]
        return single_model_result(
            decision, spec, outcome, failed, self.router.config.price_overrides
        )
