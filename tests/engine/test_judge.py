"""The pairwise LLM judge: parsing, the order swap, and the simulated judge's accuracy.

The simulated judge is right with probability ``judge_accuracy`` and answers "A" with
probability ``judge_position_bias`` whatever the answers. Seeded: the same numbers every
run. With the swap, a pair's value is the mean of the two calls' picks of the treatment,
so with no bias the expected win rate is ``p q + (1 - p)(1 - q)`` (``q``: the share of
pairs where the treatment's answer is truly better).
"""

from __future__ import annotations

import math

import pytest

from routing_platform.engine.catalog import Catalog
from routing_platform.engine.cost import TokenUsage
from routing_platform.engine.judge import (
    JudgeParseError,
    judge_messages,
    judge_pair,
    parse_verdict,
    treatment_value,
)
from routing_platform.engine.providers.base import CompletionResponse
from routing_platform.engine.providers.simulated import SimulatedProvider
from tests.engine.conftest import RecordingSleep

SPEC = Catalog().get("gpt-4.1-mini")
GOOD = "[simulated gpt-4.1, premium tier] A careful answer."
WORSE = "[simulated gpt-4.1-nano, mini tier] A quick answer."
Z_99 = 2.576


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ('{"winner": "A", "reason": "more complete"}', "A"),
        ('{"winner": "b"}', "B"),
        ('Sure. ```json\n{"winner": "tie", "reason": "same"}\n```', "tie"),
    ],
)
def test_parse_verdict_reads_json_even_inside_prose(text, winner):
    """The verdict is read from JSON, also when a model wraps it in prose or a fence."""
    assert parse_verdict(text) == winner


@pytest.mark.parametrize("text", ["", "A is better", '{"winner": "C"}', '{"reason": "x"}', "[]"])
def test_an_unparseable_answer_is_an_error_not_a_verdict(text):
    """No recognisable verdict raises JudgeParseError (recorded as a judge error)."""
    with pytest.raises(JudgeParseError):
        parse_verdict(text)


def test_the_two_orders_combine_into_win_loss_or_tie():
    """Won in both orders 1, lost in both 0, any disagreement (or a tie) 0.5."""
    assert treatment_value("A", "B") == 1.0
    assert treatment_value("B", "A") == 0.0
    assert treatment_value("A", "A") == 0.5
    assert treatment_value("B", "B") == 0.5
    assert treatment_value("tie", "B") == 0.5


class Garbling:
    """A provider whose judge answers hold no verdict."""

    simulated = False

    async def complete(self, request):
        return CompletionResponse(
            text="I think the first one.",
            model=request.model,
            provider="x",
            usage=TokenUsage(input_tokens=400, output_tokens=10),
        )


async def test_judge_pair_records_the_parse_error_and_the_cost_of_trying():
    """An unparseable judge answer gives no value, the error, and what the call cost."""
    outcome = await judge_pair(
        provider=Garbling(), spec=SPEC, question="q", treatment_answer=GOOD, control_answer=WORSE
    )
    assert outcome.value is None
    assert "no verdict" in outcome.error
    assert outcome.verdicts == ()
    assert outcome.cost_usd > 0


def _interval(values: list[float]) -> tuple[float, float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = Z_99 * sd / math.sqrt(n)
    return mean, mean - half, mean + half


async def _judge_many(judge: SimulatedProvider, *, pairs: int, better_share: float):
    """``pairs`` judged pairs; in the first ``better_share`` of them the treatment's answer
    is the better one. Returns (swapped values, first-order picks of the treatment)."""
    swapped, first_order = [], []
    for index in range(pairs):
        treatment_better = index < better_share * pairs
        treatment, control = (GOOD, WORSE) if treatment_better else (WORSE, GOOD)
        outcome = await judge_pair(
            provider=judge,
            spec=SPEC,
            question=f"Question number {index}: explain the trade-off.",
            treatment_answer=treatment,
            control_answer=control,
        )
        swapped.append(outcome.value)
        first_order.append(1.0 if outcome.verdicts[0] == "A" else 0.0)
    return swapped, first_order


@pytest.mark.parametrize("accuracy", [0.6, 0.8, 0.95])
async def test_a_judge_of_known_accuracy_measures_win_rates_within_their_intervals(accuracy):
    """Over 1,000 pairs (70% truly better), the measured win rate's 99% interval holds
    p q + (1 - p)(1 - q)."""
    judge = SimulatedProvider(seed=3, sleep=RecordingSleep(), judge_accuracy=accuracy)
    swapped, _ = await _judge_many(judge, pairs=1000, better_share=0.7)
    expected = accuracy * 0.7 + (1 - accuracy) * 0.3
    mean, low, high = _interval(swapped)
    assert low <= expected <= high, (mean, low, high, expected)
    assert high - low < 0.1


async def test_the_order_swap_removes_a_position_bias():
    """A judge that says "A" 40% of the time regardless, on pairs where neither arm is
    better overall: one order shows the treatment (always A) winning ~70%; the swapped
    verdicts put it at 0.5, inside their interval."""
    judge = SimulatedProvider(
        seed=5, sleep=RecordingSleep(), judge_accuracy=0.8, judge_position_bias=0.4
    )
    swapped, first_order = await _judge_many(judge, pairs=1000, better_share=0.5)
    single, single_low, _ = _interval(first_order)
    assert single == pytest.approx(0.7, abs=0.05) and single_low > 0.5
    mean, low, high = _interval(swapped)
    assert low <= 0.5 <= high, (mean, low, high)


async def test_the_simulated_judge_says_it_is_simulated():
    """Its reason names the simulation, so no verdict passes for a real model's."""
    judge = SimulatedProvider(seed=1, sleep=RecordingSleep())
    outcome = await judge_pair(
        provider=judge, spec=SPEC, question="q", treatment_answer=GOOD, control_answer=WORSE
    )
    assert all("simulated judge" in text for text in outcome.raw)
    assert outcome.value in (0.0, 0.5, 1.0)
    assert judge_messages("q", "a", "b")[1]["content"].count("<answer_") == 2
