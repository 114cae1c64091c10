"""How sure are we of an answer? A number in [0, 1] from the best signal available.

Signals, strongest first (the `method` string in the result names which were used):

1. **logprobs** (OpenAI `logprobs`, Gemini `avgLogprobs`, the simulator): the geometric
   mean token probability, exp(mean log p). It is the model's own per-token certainty,
   costs nothing extra, and is the signal the routing literature calibrates against.
2. **self-report**: the `confidence` field the council prompt asks for in its JSON. Models
   over-state it, so it is blended (weight 0.4) rather than trusted alone.
3. **agreement** between council members: 1 - (sample std of scores) / 50, i.e. 1 when
   all members give the same 0-100 score and 0 when they are as far apart as possible.
4. **heuristics** on the text when nothing else exists (Anthropic returns no logprobs):
   start at 0.85; an empty answer is 0; a truncated answer (`finish_reason` length /
   max_tokens) -0.30; hedging ("I'm not sure", "it depends") -0.15; a refusal -0.40;
   worked arithmetic that is wrong ("15 + 25 = 45": the answer's own `a op b = c` steps
   re-computed) -0.30; a long answer that stops mid-sentence (cut off though no
   `finish_reason` says so) -0.15. On the RouteLLM GSM8K dev answers of Mixtral, these
   two checks alone lift the cascade's APGR from 0.63 to 0.66 (BENCHMARKS.md).

Combination: the mean of the available primary signals (logprobs, self-report) weighted
0.6 / 0.4, then the heuristic penalties are subtracted, and the result is clamped.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from routing_platform.engine.arithmetic import arithmetic_checks

_HEDGES = re.compile(
    r"\b(i'?m not sure|i am not sure|not certain|it depends|i think|possibly|might be|"
    r"unclear|hard to say)\b",
    re.IGNORECASE,
)
_REFUSALS = re.compile(
    r"\b(i can(?:no|')t help|i cannot (?:help|assist|answer)|i'?m unable to|as an ai)\b",
    re.IGNORECASE,
)
_TRUNCATED = {"length", "max_tokens", "MAX_TOKENS"}

_UNFINISHED_MIN_CHARS = 200
_FINISHED_ENDINGS = frozenset(".!?)]}\"'`*%$0123456789>|")


@dataclass(frozen=True, slots=True)
class ConfidenceEstimate:
    value: float
    method: str
    signals: tuple[tuple[str, float], ...] = ()


def clamp(value: float) -> float:
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, float(value)))


def from_logprobs(logprobs: Sequence[float]) -> float:
    """Geometric-mean token probability."""
    if not logprobs:
        raise ValueError("no logprobs")
    return clamp(math.exp(sum(logprobs) / len(logprobs)))


def from_agreement(scores: Sequence[float], scale: float = 50.0) -> float:
    """1 - std/scale for scores on a 0-100 scale; one score alone says nothing (0.5)."""
    if len(scores) < 2:
        return 0.5
    return clamp(1.0 - statistics.stdev(scores) / scale)


def looks_unfinished(text: str) -> bool:
    """A long answer whose last character ends no sentence, number, list or code block."""
    stripped = text.rstrip()
    return len(stripped) >= _UNFINISHED_MIN_CHARS and stripped[-1] not in _FINISHED_ENDINGS


def text_penalty(text: str, finish_reason: str | None) -> tuple[float, list[tuple[str, float]]]:
    penalties: list[tuple[str, float]] = []
    if finish_reason in _TRUNCATED:
        penalties.append(("truncated", 0.30))
    elif looks_unfinished(text):
        penalties.append(("unfinished", 0.15))
    if arithmetic_checks(text)[1]:
        penalties.append(("arithmetic", 0.30))
    if _REFUSALS.search(text):
        penalties.append(("refusal", 0.40))
    elif _HEDGES.search(text[:2000]):
        penalties.append(("hedging", 0.15))
    return sum(p for _, p in penalties), penalties


def estimate(
    text: str,
    *,
    finish_reason: str | None = None,
    logprobs: Sequence[float] | None = None,
    self_reported: float | None = None,
) -> ConfidenceEstimate:
    """Confidence in one answer from the signals available."""
    if not text.strip():
        return ConfidenceEstimate(0.0, "empty", (("empty", 0.0),))
    signals: list[tuple[str, float]] = []
    weighted: list[tuple[float, float]] = []
    if logprobs:
        value = from_logprobs(logprobs)
        signals.append(("logprobs", value))
        weighted.append((0.6, value))
    if self_reported is not None:
        value = clamp(self_reported)
        signals.append(("self_report", value))
        weighted.append((0.4, value))
    if weighted:
        base = sum(w * v for w, v in weighted) / sum(w for w, _ in weighted)
        method = "+".join(name for name, _ in signals)
    else:
        base = 0.85
        method = "heuristic"
    penalty, penalties = text_penalty(text, finish_reason)
    signals.extend((name, -p) for name, p in penalties)
    if penalties and method != "heuristic":
        method += "+heuristic"
    return ConfidenceEstimate(round(clamp(base - penalty), 4), method, tuple(signals))


def council_confidence(member_confidences: Sequence[float], scores: Sequence[float]) -> float:
    """Council: half the members' mean confidence, half their agreement on the score."""
    if not scores:
        return 0.0
    mean_self = statistics.fmean(member_confidences) if member_confidences else 0.5
    return round(clamp(0.5 * mean_self + 0.5 * from_agreement(scores)), 4)
