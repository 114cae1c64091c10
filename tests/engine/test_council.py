"""The council: robust JSON parsing with one repair, aggregation, the smart variant."""

from __future__ import annotations

import json

import pytest

from routing_platform.engine.catalog import Catalog
from routing_platform.engine.config import RouterConfig
from routing_platform.engine.council import (
    OriginalCouncil,
    SmartCouncil,
    parse_evaluation,
    verdict_for,
)
from routing_platform.engine.errors import (
    AllProvidersFailedError,
    EvaluationParseError,
    InvalidRequestError,
    ProviderOverloadedError,
)
from routing_platform.engine.providers.pool import ProviderPool
from routing_platform.engine.router import ModelRouter
from tests.engine.fakes import ScriptedProvider


def answer(score, confidence=0.9, verdict=None, feedback="Tighten the hook."):
    return json.dumps(
        {
            "score": score,
            "verdict": verdict or verdict_for(score),
            "feedback": feedback,
            "confidence": confidence,
        }
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"score": 81, "verdict": "approved", "feedback": "ok", "confidence": 0.8}',
        'Sure! Here it is:\n```json\n{"score": 81, "verdict": "approved", "feedback": "ok", "confidence": 0.8}\n```',
        'My evaluation: {"score": 81, "verdict": "approved", "feedback": "ok", "confidence": 0.8,} Thanks.',
        '{"Score": "81/100", "Verdict": "approved", "Feedback": "ok", "Confidence": 80}',
    ],
)
def test_parse_tolerates_fences_prose_trailing_commas_and_strings(text):
    """Common model quirks still parse to the same evaluation."""
    evaluation = parse_evaluation(text)
    assert evaluation.score == 81
    assert evaluation.confidence == pytest.approx(0.8)
    assert evaluation.verdict == "approved"


@pytest.mark.parametrize(
    "text", ["", "I think it is good.", '{"verdict": "approved"}', '{"score": true}']
)
def test_parse_rejects_answers_without_a_score(text):
    """No JSON object or no numeric score: ValueError."""
    with pytest.raises(ValueError):
        parse_evaluation(text)


def test_scores_are_clamped_and_verdicts_follow_thresholds():
    """Scores outside 0-100 are clamped; 70+ approved, 50+ needs revision, else rejected."""
    assert parse_evaluation('{"score": 140}').score == 100
    assert [verdict_for(s) for s in (85, 70, 69.9, 50, 10)] == [
        "approved",
        "approved",
        "needs_revision",
        "needs_revision",
        "rejected",
    ]


def council_pool(scripts: dict[str, dict[str, list]]) -> tuple[ProviderPool, dict]:
    providers = {name: ScriptedProvider(name, script) for name, script in scripts.items()}
    return ProviderPool(providers, Catalog()), providers


async def test_original_council_asks_every_premium_model_and_aggregates():
    """One premium model per provider, in parallel; confidence-weighted mean; agreement."""
    pool, providers = council_pool(
        {
            "openai": {"gpt-4.1": [answer(80, 0.9)]},
            "anthropic": {"claude-sonnet-4-5": [answer(70, 0.9)]},
            "gemini": {"gemini-2.5-pro": [answer(90, 0.9)]},
        }
    )
    result = await OriginalCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script(
        "A script", "tech"
    )
    assert result["final_score"] == 80.0
    assert result["verdict"] == "approved"
    assert {m["model"] for m in result["council"]} == {
        "gpt-4.1",
        "claude-sonnet-4-5",
        "gemini-2.5-pro",
    }
    metadata = result["_routing_metadata"]
    assert metadata["strategy"] == "original_council"
    assert metadata["tier"] == "premium"
    assert metadata["baseline_cost"] == metadata["cost"] > 0
    assert metadata["savings"]["percentage"] == 0
    assert 0 < metadata["confidence"] < 1
    # The request asked for JSON with the four keys.
    request = providers["openai"].calls[0]
    assert request.json_mode and "score" in request.messages[0]["content"]
    assert "A script" in request.messages[1]["content"]


async def test_malformed_member_gets_one_repair_then_counts():
    """A member whose first answer is broken is asked once more; its repaired answer counts."""
    pool, providers = council_pool(
        {
            "openai": {"gpt-4.1": ['{"score": 6', answer(60)]},
            "anthropic": {"claude-sonnet-4-5": [answer(60)]},
        }
    )
    result = await OriginalCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script("s", "n")
    assert result["final_score"] == 60
    assert result["errors"] == []
    repair = providers["openai"].calls[1]
    assert (
        repair.messages[-1]["role"] == "user" and "not valid JSON" in repair.messages[-1]["content"]
    )
    assert repair.messages[-2] == {"role": "assistant", "content": '{"score": 6'}


async def test_member_still_malformed_after_repair_is_a_recorded_error():
    """Two bad answers: that member is listed in errors; the others decide."""
    pool, providers = council_pool(
        {
            "openai": {"gpt-4.1": ["no json here"]},
            "anthropic": {"claude-sonnet-4-5": [answer(40)]},
        }
    )
    result = await OriginalCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script("s", "n")
    assert result["final_score"] == 40 and result["verdict"] == "rejected"
    assert len(providers["openai"].calls) == 2  # exactly one repair attempt
    assert "gpt-4.1" in result["errors"][0] and "not valid JSON" in result["errors"][0]


async def test_member_provider_failure_is_recorded_and_the_rest_decide():
    """A provider error removes one member, not the council."""
    down = ProviderOverloadedError("gemini", 503, "unavailable")
    pool, _ = council_pool(
        {"openai": {"gpt-4.1": [answer(75)]}, "gemini": {"gemini-2.5-pro": [down]}}
    )
    result = await OriginalCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script("s", "n")
    assert result["final_score"] == 75
    assert any("503" in error for error in result["errors"])


async def test_all_members_failing_is_a_typed_error():
    """Every provider down: AllProvidersFailedError with metadata."""
    down = ProviderOverloadedError("openai", 500, "x")
    pool, _ = council_pool({"openai": {"gpt-4.1": [down]}})
    with pytest.raises(AllProvidersFailedError) as info:
        await OriginalCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script("s", "n")
    assert info.value.metadata["strategy"] == "original_council"


async def test_smart_council_routes_one_model_and_reports_savings():
    """The smart council asks one routed model; baseline is the whole council's cost."""
    pool, providers = council_pool(
        {
            "openai": {
                "gpt-4.1-mini": [answer(66, 0.95)],
                "gpt-4.1": [answer(66)],
                "gpt-4.1-nano": [answer(66, 0.95)],
            },
            "anthropic": {"claude-sonnet-4-5": [answer(60)]},
        }
    )
    result = await SmartCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script(
        "Hook: " + "a detailed script about budgeting. " * 20, "finance"
    )
    assert set(result) >= {"verdict", "final_score", "feedback", "_routing_metadata"}
    assert result["final_score"] == 66
    metadata = result["_routing_metadata"]
    assert metadata["strategy"] == "smart_routing"
    assert metadata["models_tried"] == [metadata["model"]]
    assert metadata["baseline_cost"] > metadata["cost"] > 0
    assert metadata["savings"]["percentage"] > 50
    assert len(providers["anthropic"].calls) == 0


async def test_smart_council_escalates_on_unparseable_answers():
    """A model that cannot produce JSON even after repair counts as zero confidence: escalate."""
    pool, _ = council_pool(
        {"openai": {"gpt-4.1-nano": ["nope"], "gpt-4.1-mini": ["nope"], "gpt-4.1": [answer(77)]}}
    )
    result = await SmartCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script(
        "short script", "n"
    )
    metadata = result["_routing_metadata"]
    assert result["final_score"] == 77
    assert metadata["escalated"]
    assert "not valid JSON" in metadata["escalation_reason"]
    assert metadata["models_tried"][-1] == "gpt-4.1"


async def test_smart_council_parse_failure_at_premium_is_a_typed_error():
    """Nothing parseable anywhere: EvaluationParseError with the metadata of every attempt."""
    pool, _ = council_pool(
        {"openai": {"gpt-4.1-nano": ["x"], "gpt-4.1-mini": ["x"], "gpt-4.1": ["x"]}}
    )
    with pytest.raises(EvaluationParseError) as info:
        await SmartCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script("s", "n")
    # Script evaluations start on standard (the rubric makes them medium), then premium.
    assert info.value.metadata["models_tried"] == ["gpt-4.1-mini", "gpt-4.1"]


async def test_empty_script_is_an_invalid_request():
    """An empty script says what to send."""
    pool, _ = council_pool({"openai": {"gpt-4.1": [answer(1)]}})
    with pytest.raises(InvalidRequestError, match="script is empty"):
        await SmartCouncil(ModelRouter(RouterConfig(), pool=pool)).evaluate_script("  ", "n")
