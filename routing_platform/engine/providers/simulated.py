"""The simulated provider: deterministic answers for the offline demo, tests and load tests.

Given the same prompt, model and seed it always returns the same text, token counts,
latency and confidence. It plays its tier: premium models are more reliable (higher
confidence, tighter council scores) and slower; mini models are fast and cheap but lose
confidence as the prompt gets harder (the classifier's score is the difficulty), which is
what makes the router escalate. Every response says `provider="simulated"`.

Latency is `fixed_latency_ms` when set (load tests), otherwise tier-dependent and small
(tens of milliseconds) so that tests and the demo stay quick.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from routing_platform.engine.chat import ChatOptions, StreamDelta, message_text, tool_call_deltas
from routing_platform.engine.classifier import classify
from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.providers.base import (
    CompletionRequest,
    CompletionResponse,
    Provider,
)

# Per tier: mean confidence on a prompt within its reach, how hard a prompt it handles
# (classifier score) before confidence falls, noise, latency (ms) and answer length.
TIER_PROFILE: dict[str, dict[str, float]] = {
    "mini": {"quality": 0.78, "reach": 0.28, "noise": 0.085, "latency_ms": 12, "tokens": 200},
    "standard": {"quality": 0.80, "reach": 0.58, "noise": 0.08, "latency_ms": 25, "tokens": 220},
    "premium": {"quality": 0.89, "reach": 1.00, "noise": 0.05, "latency_ms": 45, "tokens": 240},
}
# How fast confidence falls per unit of difficulty above the tier's reach.
OVERREACH_SLOPE = 0.9
STREAM_WORDS = 4  # words per streamed piece
# Spread of council scores around the script's "true" score, per tier.
SCORE_NOISE = {"mini": 9.0, "standard": 6.0, "premium": 3.5}

_OPENERS = (
    "Here is a concise answer.",
    "Short answer first, then the detail.",
    "Working through the request:",
    "The key points are these.",
)
_FEEDBACK = (
    "The hook lands in the first seconds",
    "the pacing sags in the middle",
    "the call to action is clear",
    "the niche vocabulary is used well",
    "the structure could be tighter",
    "the payoff arrives too late",
    "the tone fits the audience",
    "examples would make the claims concrete",
)


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))  # simulation, not security


# The simulated judge's view of an answer's quality: a council evaluation is as good as
# its score is close to the script's "true" score; a chat answer as good as its tier.
JUDGE_TIER_QUALITY = {"mini": 0.55, "standard": 0.7, "premium": 0.85}
_JUDGE_PART = re.compile(r"<(question|answer_a|answer_b)>\n(.*?)\n</\1>", re.S)
_ANSWER_TIER = re.compile(r"\[simulated [^\]]*?, (mini|standard|premium) tier\]")


def _verdict(score: float) -> str:
    if score >= 70:
        return "approved"
    if score >= 50:
        return "needs_revision"
    return "rejected"


def example_of(schema: Any) -> Any:
    """A value matching a JSON schema (the simulator's stand-in for a model's answer)."""
    if not isinstance(schema, dict):
        return "simulated"
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_of(schema[key][0])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: example_of(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example_of(schema.get("items") or {})] * max(1, int(schema.get("minItems") or 1))
    return {"string": "simulated", "integer": 1, "number": 1.5, "boolean": True}.get(kind)


def _tool_call(options: ChatOptions, rng: random.Random) -> dict[str, Any]:
    """A call of the tool the request names (tool_choice) or else its first tool."""
    choice = options.tool_choice
    wanted = choice["function"]["name"] if isinstance(choice, dict) else None
    tool = next((t for t in options.tools if t["function"]["name"] == wanted), options.tools[0])
    function = tool["function"]
    arguments = example_of(function.get("parameters") or {"type": "object"})
    return {
        "id": f"call_sim{rng.randrange(16**8):08x}",
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps(arguments)},
    }


def _after_tool(options: ChatOptions) -> bool:
    """The last turn is a tool's result."""
    return bool(options.messages) and options.messages[-1].get("role") in ("tool", "function")


def _calls_a_tool(options: ChatOptions | None) -> bool:
    """Tools offered, not forbidden, and the last turn is not a tool's result."""
    if options is None or not options.tools or options.tool_choice == "none":
        return False
    return not _after_tool(options)


class SimulatedProvider(Provider):
    name = "simulated"
    key_env = ""
    simulated = True
    streams = True  # its pieces are relayed as it yields them

    def __init__(
        self,
        *,
        seed: int = 0,
        fixed_latency_ms: float = 0.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        judge_accuracy: float = 0.85,
        judge_position_bias: float = 0.0,
        supports: frozenset[str] | None = None,
    ) -> None:
        if supports is not None:  # play a vendor: refuse what it cannot honour
            self.supports = supports
        self.seed = seed
        # As a judge (task_type "judge"): how often it picks the better answer, and the
        # share of verdicts that say "A" whatever the answers (position bias).
        self.judge_accuracy = judge_accuracy
        self.judge_position_bias = judge_position_bias
        self.fixed_latency_ms = fixed_latency_ms
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"<SimulatedProvider seed={self.seed}>"

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        tier = request.tier if request.tier in TIER_PROFILE else "standard"
        profile = TIER_PROFILE[tier]
        prompt = "\n".join(m["content"] for m in request.messages)
        user_text = next(
            (m["content"] for m in reversed(request.messages) if m.get("role") == "user"), prompt
        )
        rng = _rng(self.seed, request.model, prompt)
        difficulty = classify(user_text, request.task_type or "analysis").score

        overreach = max(0.0, difficulty - profile["reach"])
        confidence = (
            profile["quality"] - OVERREACH_SLOPE * overreach + rng.gauss(0.0, profile["noise"])
        )
        confidence = min(0.99, max(0.05, confidence))

        if request.task_type == "judge":
            text = self._judge_json(request, rng)
            output_tokens = max(1, len(text) // 4)
        elif request.json_mode:
            text = self._evaluation_json(request, tier, confidence, rng)
            output_tokens = max(1, len(text) // 4)
        else:
            output_tokens = int(profile["tokens"] * (0.6 + difficulty) * rng.uniform(0.8, 1.2))
            text = ""
        finish_reason = "stop"
        if request.max_tokens is not None and output_tokens > request.max_tokens:
            output_tokens = request.max_tokens
            finish_reason = "length"
        if not request.json_mode and request.task_type != "judge":
            text = self._answer(request, tier, user_text, output_tokens, rng)
        tool_calls: tuple[dict[str, Any], ...] = ()
        options = request.options
        if _calls_a_tool(options):
            assert options is not None
            tool_calls, text, finish_reason = (_tool_call(options, rng),), "", "tool_calls"
        elif options is not None and options.json_schema is not None:
            text = json.dumps(example_of(options.json_schema.get("schema") or {}))
        elif options is not None and options.json_mode:
            text = json.dumps({"answer": text, "simulated": True})
        elif options is not None and not _calls_a_tool(options) and _after_tool(options):
            result = message_text(options.messages[-1])[:200]
            text = (
                f"[simulated {request.model}, {tier} tier] The tool answered \u201c{result}\u201d."
            )
        if options is not None:
            text = self._cut_at_stop(text, options.stop)

        latency_ms = (
            self.fixed_latency_ms
            if self.fixed_latency_ms > 0
            else profile["latency_ms"] * (0.8 + 0.5 * rng.random()) * (0.8 + 0.4 * difficulty)
        )
        if latency_ms > 0:
            await self._sleep(latency_ms / 1000.0)

        # Token logprobs whose geometric mean is the simulated confidence.
        center = math.log(confidence)
        jitter = [rng.uniform(-0.02, 0.02) for _ in range(3)]
        logprobs = tuple(min(0.0, center + j) for j in (*jitter, *(-j for j in jitter)))
        token_logprobs = None
        if options is not None and options.logprobs:
            token_logprobs = tuple(
                {"token": f"t{i}", "logprob": value, "bytes": None, "top_logprobs": []}
                for i, value in enumerate(logprobs)
            )
        return CompletionResponse(
            text=text,
            model=request.model,
            provider=self.name,
            usage=TokenUsage(
                input_tokens=max(1, len(prompt) // 4), output_tokens=max(1, output_tokens)
            ),
            finish_reason=finish_reason,
            logprobs=logprobs,
            latency_ms=round(latency_ms, 3),
            tool_calls=tool_calls,
            token_logprobs=token_logprobs,
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamDelta]:
        """The answer in pieces of a few words (no pause between them)."""
        response = await self.complete(request)
        words = response.text.split(" ")
        for start in range(0, len(words), STREAM_WORDS):
            piece = " ".join(words[start : start + STREAM_WORDS])
            yield StreamDelta(text=piece if start == 0 else " " + piece, model=response.model)
        yield StreamDelta(
            tool_calls=tool_call_deltas(response.tool_calls),
            finish_reason=response.finish_reason,
            usage=response.usage,
            logprobs=response.token_logprobs,
        )

    @staticmethod
    def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
        cuts = [text.index(s) for s in stop if s and s in text]
        return text[: min(cuts)] if cuts else text

    def _answer(
        self, request: CompletionRequest, tier: str, user_text: str, tokens: int, rng: random.Random
    ) -> str:
        topic = " ".join(user_text.split()[:12])
        opener = _OPENERS[rng.randrange(len(_OPENERS))]
        return (
            f"[simulated {request.model}, {tier} tier] {opener} "
            f"For the {request.task_type or 'general'} request \u201c{topic}\u201d: "
            f"a {tokens}-token answer would appear here when a real provider is configured."
        )

    def _answer_quality(self, question: str, answer: str) -> float:
        """The simulator's "true" quality of an answer (what its judge sees, noisily)."""
        try:
            score = float(json.loads(answer)["score"])
        except (ValueError, TypeError, KeyError):
            match = _ANSWER_TIER.search(answer)
            if match:
                return JUDGE_TIER_QUALITY[match.group(1)]
            return _rng(self.seed, "answer", answer).random()
        truth = _rng(self.seed, "truth", question).uniform(42.0, 94.0)
        return 1.0 - abs(score - truth) / 100.0

    def _judge_json(self, request: CompletionRequest, rng: random.Random) -> str:
        """A pairwise verdict: right with ``judge_accuracy``, "A" with ``judge_position_bias``."""
        parts = dict(_JUDGE_PART.findall(request.messages[-1]["content"]))
        quality_a = self._answer_quality(parts.get("question", ""), parts.get("answer_a", ""))
        quality_b = self._answer_quality(parts.get("question", ""), parts.get("answer_b", ""))
        if rng.random() < self.judge_position_bias:
            winner = "A"
        elif quality_a == quality_b:
            winner = "tie"
        else:
            better, worse = ("A", "B") if quality_a > quality_b else ("B", "A")
            winner = better if rng.random() < self.judge_accuracy else worse
        reason = f"simulated judge (accuracy {self.judge_accuracy:g}); not a real model's verdict"
        return json.dumps({"winner": winner, "reason": reason})

    def _evaluation_json(
        self, request: CompletionRequest, tier: str, confidence: float, rng: random.Random
    ) -> str:
        users = [m["content"] for m in request.messages if m.get("role") == "user"] or [""]
        script_text, user_text = users[0], users[-1]
        # The script's "true" quality depends on the script only, so members roughly agree.
        truth = _rng(self.seed, "truth", script_text).uniform(42.0, 94.0)
        score = round(min(100.0, max(0.0, rng.gauss(truth, SCORE_NOISE[tier]))))
        picks = rng.sample(_FEEDBACK, 2)
        body = {
            "score": score,
            "verdict": _verdict(score),
            "feedback": f"{picks[0].capitalize()}; {picks[1]}.",
            "confidence": round(confidence, 2),
        }
        text = json.dumps(body)
        roll = rng.random()
        # Small models sometimes wrap or break their JSON; the council must cope.
        if tier == "mini" and roll < 0.04:
            return "Here is my evaluation:\n```json\n" + text + "\n```"
        if tier == "mini" and roll < 0.05 and "not valid JSON" not in user_text:
            return text[: len(text) // 2]
        return text
