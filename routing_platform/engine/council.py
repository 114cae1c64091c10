"""The script-evaluation council: the original ensemble and its smart-routed replacement.

Original: one premium model per configured provider, asked in parallel for JSON
`{"score": 0-100, "verdict", "feedback", "confidence": 0-1}`; each answer is parsed
robustly (code fences, prose around the object, trailing commas); a malformed answer gets
one repair request, then the member is recorded as an error. The council's final score is
the confidence-weighted mean of the members' scores, the verdict comes from that score by
threshold, and its confidence blends the members' confidence with their agreement.

Smart: the same evaluation routed through the router (one model, escalating on low
confidence or an unparseable answer). Baseline cost for both is what the original council
pays: every configured provider's premium model on the same input and output tokens.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from routing_platform.engine import confidence as confidence_mod
from routing_platform.engine.catalog import ModelSpec
from routing_platform.engine.classifier import classify
from routing_platform.engine.cost import TokenUsage, cost_usd
from routing_platform.engine.errors import (
    AllProvidersFailedError,
    EvaluationParseError,
    InvalidRequestError,
    ProviderError,
    RoutingError,
)
from routing_platform.engine.executor import VENDOR_PROVIDERS, routed_metadata, savings
from routing_platform.engine.providers.base import CompletionRequest, Provider
from routing_platform.engine.router import CallOutcome, ModelRouter

APPROVE_FROM = 70.0
REVISE_FROM = 50.0
MAX_SCRIPT_CHARS = 100_000

SYSTEM_PROMPT = (
    "You are a senior content strategist on a review council. Evaluate the script you are "
    "given for its niche: hook, structure, clarity, audience fit and call to action. "
    "Reply with ONLY a JSON object, no prose and no code fences, with exactly these keys: "
    '"score" (integer 0-100), "verdict" ("approved", "needs_revision" or "rejected"), '
    '"feedback" (two or three sentences of concrete advice), and "confidence" (0-1, how '
    "sure you are of your score)."
)
REPAIR_PROMPT = (
    "Your previous reply was not valid JSON. Reply again with ONLY the JSON object with keys "
    "score, verdict, feedback and confidence."
)


def verdict_for(score: float) -> str:
    if score >= APPROVE_FROM:
        return "approved"
    if score >= REVISE_FROM:
        return "needs_revision"
    return "rejected"


@dataclass(frozen=True)
class Evaluation:
    score: float
    verdict: str
    feedback: str
    confidence: float | None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        found.append(text[start : end + 1])
    found.append(text)
    return found


def parse_evaluation(text: str) -> Evaluation:
    """Parse a member's answer; `ValueError` says why it is not usable."""
    data: Any = None
    for candidate in _candidates(text.strip()):
        for variant in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                data = json.loads(variant)
            except ValueError:
                continue
            if isinstance(data, dict):
                break
        if isinstance(data, dict):
            break
    if not isinstance(data, dict):
        raise ValueError("no JSON object in the answer")
    lowered = {str(k).lower(): v for k, v in data.items()}
    raw_score = lowered.get("score", lowered.get("final_score"))
    if isinstance(raw_score, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)", raw_score)
        raw_score = float(match.group(1)) if match else None
    if isinstance(raw_score, bool) or not isinstance(raw_score, int | float):
        raise ValueError("the JSON has no numeric score")
    score = min(100.0, max(0.0, float(raw_score)))
    raw_confidence = lowered.get("confidence")
    confidence = None
    if isinstance(raw_confidence, int | float) and not isinstance(raw_confidence, bool):
        value = float(raw_confidence)
        confidence = confidence_mod.clamp(value / 100.0 if value > 1.0 else value)
    verdict = str(lowered.get("verdict") or verdict_for(score))
    feedback = str(lowered.get("feedback") or "")
    return Evaluation(score, verdict, feedback, confidence)


def evaluation_messages(script: str, niche: str) -> tuple[dict[str, str], ...]:
    return (
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Niche: {niche}\n\nScript:\n{script}"},
    )


def validate_script(script: Any, niche: Any) -> tuple[str, str]:
    if not isinstance(script, str) or not script.strip():
        raise InvalidRequestError("script is empty: send the script text to evaluate.")
    if len(script) > MAX_SCRIPT_CHARS:
        raise InvalidRequestError(
            f"script is {len(script)} characters; the limit is {MAX_SCRIPT_CHARS}."
        )
    if not isinstance(niche, str) or not niche.strip():
        niche = "general"
    return script, niche.strip()[:200]


async def ask_for_evaluation(
    spec: ModelSpec, provider: Provider, script: str, niche: str
) -> CallOutcome:
    """Ask one model; one repair request if the answer is not the JSON asked for."""
    messages = evaluation_messages(script, niche)
    request = CompletionRequest(
        model=spec.name,
        messages=messages,
        max_tokens=600,
        temperature=0.2,
        json_mode=True,
        logprobs=True,
        tier=spec.tier,
        task_type="analysis",
    )
    response = await provider.complete(request)
    usage = first_usage = response.usage
    latency = response.latency_ms
    calls = 1
    try:
        evaluation = parse_evaluation(response.text)
    except ValueError:
        repair = replace(
            request,
            messages=(
                *messages,
                {"role": "assistant", "content": response.text[:4000]},
                {"role": "user", "content": REPAIR_PROMPT},
            ),
            temperature=0.0,
        )
        response = await provider.complete(repair)
        usage = usage + response.usage
        latency += response.latency_ms
        calls = 2
        try:
            evaluation = parse_evaluation(response.text)
        except ValueError as err:
            return CallOutcome(
                text=response.text,
                usage=usage,
                confidence=confidence_mod.ConfidenceEstimate(0.0, "unparseable"),
                provider=response.provider,
                latency_ms=latency,
                error=f"answer was not valid JSON after one repair ({err})",
                calls=calls,
                first_usage=first_usage,
            )
    estimate = confidence_mod.estimate(
        evaluation.feedback or response.text,
        finish_reason=response.finish_reason,
        logprobs=response.logprobs,
        self_reported=evaluation.confidence,
    )
    return CallOutcome(
        text=response.text,
        usage=usage,
        confidence=estimate,
        provider=response.provider,
        latency_ms=latency,
        payload=evaluation,
        calls=calls,
        first_usage=first_usage,
    )


def council_members(router: ModelRouter) -> list[ModelSpec]:
    """One premium model per configured provider: the original council."""
    pool = router.pool
    assert pool is not None
    members = []
    for provider in pool.configured_providers():
        if provider not in VENDOR_PROVIDERS:
            continue
        spec = pool.catalog.premium_for(provider)
        if spec is not None:
            members.append(spec)
    return members


def council_baseline_usd(router: ModelRouter, usage: TokenUsage) -> Decimal:
    """What the original council pays for an evaluation of this size."""
    plain = TokenUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    return sum(
        (cost_usd(spec, plain, router.config.price_overrides) for spec in council_members(router)),
        Decimal("0"),
    )


class _Council:
    """An evaluation runs on one router (its provider pool and configuration)."""

    def __init__(self, router: ModelRouter) -> None:
        self.router = router


class OriginalCouncil(_Council):
    """The ensemble users migrate from: every premium model, in parallel."""

    async def evaluate_script(self, script: str, niche: str = "general") -> dict[str, Any]:
        script, niche = validate_script(script, niche)
        router = self.router
        pool = router.pool
        assert pool is not None
        members = council_members(router)
        classification = classify(script, "analysis")
        if not members:
            raise AllProvidersFailedError(
                [], what="the council", metadata={"strategy": "original_council"}
            )

        async def one(spec: ModelSpec) -> CallOutcome:
            return await pool.call_model(spec, lambda s, p: ask_for_evaluation(s, p, script, niche))

        outcomes = await asyncio.gather(*(one(spec) for spec in members), return_exceptions=True)
        members_out: list[dict[str, Any]] = []
        errors: list[str] = []
        provider_errors: list[ProviderError] = []
        scores: list[float] = []
        weights: list[float] = []
        confidences: list[float] = []
        total_cost = Decimal("0")
        total_usage = TokenUsage()
        latency = 0.0
        providers_seen: list[str] = []
        for spec, outcome in zip(members, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, ProviderError):
                    raise outcome
                provider_errors.append(outcome)
                errors.append(f"{spec.name}: {outcome}")
                members_out.append(
                    {"model": spec.name, "provider": spec.provider, "error": str(outcome)}
                )
                continue
            cost = cost_usd(spec, outcome.usage, router.config.price_overrides)
            total_cost += cost
            total_usage = total_usage + outcome.usage
            latency = max(latency, outcome.latency_ms)  # members run in parallel
            if outcome.provider not in providers_seen:
                providers_seen.append(outcome.provider)
            evaluation: Evaluation | None = outcome.payload
            if evaluation is None:
                errors.append(f"{spec.name}: {outcome.error}")
                members_out.append(
                    {
                        "model": spec.name,
                        "provider": outcome.provider,
                        "error": outcome.error,
                        "cost": float(cost),
                    }
                )
                continue
            member_confidence = (
                evaluation.confidence
                if evaluation.confidence is not None
                else outcome.confidence.value
            )
            scores.append(evaluation.score)
            confidences.append(member_confidence)
            weights.append(max(0.05, member_confidence))
            members_out.append(
                {
                    "model": spec.name,
                    "provider": outcome.provider,
                    "score": evaluation.score,
                    "verdict": evaluation.verdict,
                    "feedback": evaluation.feedback,
                    "confidence": member_confidence,
                    "cost": float(cost),
                }
            )
        metadata: dict[str, Any] = {
            "strategy": "original_council",
            "task_type": "analysis",
            "complexity": classification.complexity,
            "complexity_score": classification.score,
            "reasons": list(classification.reasons),
            "tier": "premium",
            "initial_tier": "premium",
            "model": "+".join(spec.name for spec in members),
            "provider": "+".join(providers_seen) or "+".join(s.provider for s in members),
            "models_tried": [spec.name for spec in members],
            "escalated": False,
            "escalation_reason": "",
            "input_tokens": total_usage.input_tokens,
            "output_tokens": total_usage.output_tokens,
            "cost": float(total_cost),
            "baseline_cost": float(total_cost),
            "savings": savings(total_cost, total_cost),
            "latency_ms": round(latency, 3),
            "simulated": providers_seen == ["simulated"],
            "council_size": len(members),
            "errors": errors,
        }
        if not scores:
            metadata["confidence"] = 0.0
            if provider_errors and len(provider_errors) == len(members):
                raise AllProvidersFailedError(
                    provider_errors, what="the council", metadata=metadata
                )
            raise EvaluationParseError(
                "no council member returned a usable evaluation: " + "; ".join(errors),
                metadata=metadata,
            )
        final_score = round(
            sum(s * w for s, w in zip(scores, weights, strict=True)) / sum(weights), 1
        )
        council_confidence = confidence_mod.council_confidence(confidences, scores)
        metadata["confidence"] = council_confidence
        metadata["confidence_method"] = "self_report+agreement"
        metadata["agreement"] = round(confidence_mod.from_agreement(scores), 4)
        feedback = " ".join(
            f"[{m['model']}] {m['feedback']}" for m in members_out if m.get("feedback")
        )
        return {
            "verdict": verdict_for(final_score),
            "final_score": final_score,
            "feedback": feedback,
            "confidence": council_confidence,
            "score_spread": round(statistics.pstdev(scores), 2) if len(scores) > 1 else 0.0,
            "council": members_out,
            "errors": errors,
            "_routing_metadata": metadata,
        }


class SmartCouncil(_Council):
    """The same evaluation routed through the router: one model, escalating when unsure."""

    async def evaluate_script(self, script: str, niche: str = "general") -> dict[str, Any]:
        script, niche = validate_script(script, niche)
        router = self.router

        async def call(spec: ModelSpec, provider: Provider) -> CallOutcome:
            return await ask_for_evaluation(spec, provider, script, niche)

        # Classify the whole evaluation request (rubric + script), not the script alone:
        # judging a script against a rubric is harder than the script's length suggests.
        request_text = "\n\n".join(m["content"] for m in evaluation_messages(script, niche))
        try:
            result = await router.route(request_text, "analysis", call)
        except RoutingError as err:
            err.metadata.setdefault("strategy", "smart_routing")
            err.metadata.setdefault("task_type", "analysis")
            raise
        evaluation: Evaluation | None = result.outcome.payload
        baseline = council_baseline_usd(router, result.outcome.single_call_usage)
        metadata = routed_metadata(
            strategy="smart_routing",
            result=result,
            baseline_cost=baseline,
            simulated=result.outcome.provider == "simulated",
            extra={"council_size": len(council_members(router))},
        )
        if evaluation is None:
            raise EvaluationParseError(
                f"{result.spec.name}: {result.outcome.error}", metadata=metadata
            )
        return {
            "verdict": verdict_for(evaluation.score),
            "final_score": evaluation.score,
            "feedback": evaluation.feedback,
            "confidence": result.outcome.confidence.value,
            "model_verdict": evaluation.verdict,
            "_routing_metadata": metadata,
        }
