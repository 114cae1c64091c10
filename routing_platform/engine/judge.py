"""LLM-as-judge, pairwise: which of two answers to the same question is better? (pure)

The judge sees the question and two answers, A and B, and answers JSON
``{"winner": "A" | "B" | "tie", "reason": "..."}``. Every pair is judged twice, with the
answers' order swapped on the second call, to cancel the judge's position bias: the
treatment wins when both calls prefer it, loses when both prefer the control, and ties
when the two calls disagree (or both say tie). The treatment's value is 1, 0 or 0.5.

A judge answer that cannot be parsed is a :class:`JudgeParseError`, never a verdict. The
prompt is versioned (``JUDGE_PROMPT_VERSION``) so verdicts of different prompts are never
mixed silently; the judge's own cost (both calls) is part of the outcome.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from routing_platform.engine.catalog import ModelSpec
from routing_platform.engine.config import PriceOverride
from routing_platform.engine.cost import TokenUsage, cost_usd
from routing_platform.engine.providers.base import CompletionRequest, Provider

JUDGE_PROMPT_VERSION = "pairwise-v1"
JUDGE_TASK_TYPE = "judge"
JUDGE_MAX_TOKENS = 200
WINNERS = ("A", "B", "tie")

JUDGE_SYSTEM_PROMPT = (
    "You are an impartial judge of answer quality. You are given a question and two "
    "answers, A and B. Decide which answer serves the question better: correct, complete, "
    "useful. Ignore the answers' order and length. Reply with JSON only: "
    '{"winner": "A" | "B" | "tie", "reason": "<one sentence>"}.'
)
_WINNER = re.compile(r'"winner"\s*:\s*"(A|B|tie)"', re.IGNORECASE)


class JudgeParseError(ValueError):
    """The judge's answer holds no verdict (recorded as a judge error)."""


def judge_messages(question: str, answer_a: str, answer_b: str) -> tuple[dict[str, str], ...]:
    """The judge's messages (``JUDGE_PROMPT_VERSION``)."""
    user = (
        f"<question>\n{question}\n</question>\n\n"
        f"<answer_a>\n{answer_a}\n</answer_a>\n\n"
        f"<answer_b>\n{answer_b}\n</answer_b>\n\n"
        "Which answer is better?"
    )
    return ({"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user})


def parse_verdict(text: str) -> str:
    """The verdict, "A", "B" or "tie", from the judge's answer (JSON, maybe inside prose)."""
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict):
        winner = str(body.get("winner", "")).strip()
    else:
        match = _WINNER.search(text or "")
        winner = match.group(1) if match else ""
    for known in WINNERS:
        if winner.lower() == known.lower():
            return known
    raise JudgeParseError(f"no verdict in the judge's answer: {str(text)[:200]!r}")


def treatment_value(first: str, second: str) -> float:
    """The treatment's value from the two verdicts: ``first`` with the treatment as A,
    ``second`` with it as B. 1 = won both, 0 = lost both, 0.5 otherwise (a tie)."""
    picks = {("A", "B"): 1.0, ("B", "A"): 0.0}
    return picks.get((first, second), 0.5)


@dataclass(frozen=True)
class JudgeOutcome:
    """The treatment's value (None on a judge error), both verdicts and the judge's cost."""

    value: float | None
    verdicts: tuple[str, ...]
    model: str
    provider: str
    cost_usd: Decimal
    usage: TokenUsage = field(default_factory=TokenUsage)
    error: str = ""
    raw: tuple[str, ...] = ()

    def detail(self) -> dict:
        return {
            "verdicts": list(self.verdicts),
            "order": ["treatment as A", "treatment as B"],
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "error": self.error,
            "raw": [text[:500] for text in self.raw],
        }


async def judge_pair(
    *,
    provider: Provider,
    spec: ModelSpec,
    question: str,
    treatment_answer: str,
    control_answer: str,
    price_overrides: Mapping[str, PriceOverride] | None = None,
) -> JudgeOutcome:
    """Judge treatment vs control twice (treatment as A, then as B) with ``spec``."""
    verdicts: list[str] = []
    raw: list[str] = []
    usage = TokenUsage()
    cost = Decimal("0")
    error = ""
    for answer_a, answer_b in (
        (treatment_answer, control_answer),
        (control_answer, treatment_answer),
    ):
        response = await provider.complete(
            CompletionRequest(
                model=spec.name,
                messages=judge_messages(question, answer_a, answer_b),
                max_tokens=JUDGE_MAX_TOKENS,
                temperature=0.0,
                json_mode=True,
                tier=spec.tier,
                task_type=JUDGE_TASK_TYPE,
            )
        )
        raw.append(response.text)
        usage = TokenUsage(
            input_tokens=usage.input_tokens + response.usage.input_tokens,
            output_tokens=usage.output_tokens + response.usage.output_tokens,
        )
        cost += cost_usd(spec, response.usage, price_overrides)
        try:
            verdicts.append(parse_verdict(response.text))
        except JudgeParseError as err:
            error = str(err)
            break
    value = None if error else treatment_value(verdicts[0], verdicts[1])
    return JudgeOutcome(
        value=value,
        verdicts=tuple(verdicts),
        model=spec.name,
        provider=spec.provider,
        cost_usd=cost,
        usage=usage,
        error=error,
        raw=tuple(raw),
    )
