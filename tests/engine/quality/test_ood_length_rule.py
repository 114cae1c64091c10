"""Out of the training domain, prompts are routed by the prompt-length rule; traffic that is
mostly out of the domain falls back as a whole (docs/decisions/0019-ood-length-fallback.md)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from routing_platform.engine.config import RouterConfig
from routing_platform.engine.learned import (
    LearnedRouterError,
    LengthRule,
    TrafficMonitor,
    load_router,
    router_to_dict,
    save_router,
)
from routing_platform.engine.learned.ood import TRAFFIC_MINIMUM, TRAFFIC_WINDOW
from routing_platform.engine.quality.dataset import RoutingDataset
from routing_platform.engine.quality.routers import artifact_scores_with_fallback
from routing_platform.engine.quality.training import train_router
from routing_platform.engine.router import ModelRouter
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows

CHAT = [
    "Write a haiku about autumn leaves falling on a quiet pond.",
    "Can you help me plan a birthday party for my five year old daughter?",
    "Translate 'good morning, how are you?' into French and Spanish.",
    "Draft a polite email asking my landlord to fix the heating this week.",
    "What's a good recipe for banana bread without eggs?",
    "Write a cheerful limerick about a cat who loves rainy Sundays.",
]


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows(150)


@pytest.fixture(scope="module")
def trained(rows):
    router = train_router(
        [row["prompt"] for row in rows],
        np.array([row[STRONG] for row in rows], dtype=float),
        np.array([row[WEAK] for row in rows], dtype=float),
        domain=True,
    )
    scores = router.scores([row["prompt"] for row in rows])
    return router.calibrated(scores, target_strong_share=0.3)


@pytest.fixture
def router(trained):
    return replace(trained)  # a fresh traffic window for each test


def test_the_length_rule_maps_lengths_onto_the_score_scale(router, rows):
    rule = router.domain.length_rule
    assert isinstance(rule, LengthRule)
    lengths = [len(row["prompt"]) for row in rows]
    scores = router.scores([row["prompt"] for row in rows])
    # Monotone in the length, from the shortest training prompt's score quantile to the top.
    ladder = [rule.score(n) for n in range(0, 2 * max(lengths), 7)]
    assert ladder == sorted(ladder)
    assert rule.score(0) == pytest.approx(scores.min(), abs=1e-9)
    assert rule.score(10**6) == pytest.approx(scores.max(), abs=1e-9)


def test_a_prompt_outside_is_routed_by_its_length(router):
    engine = ModelRouter(RouterConfig(), learned_router=router)
    short, long = CHAT[0], " ".join(CHAT * 30)
    decisions = [engine.choose(text, "creative") for text in (short, long)]
    for decision in decisions:
        assert decision.router == "fallback"
        assert "routed by prompt length" in decision.router_reason
        assert any(reason.startswith("prompt-length rule: score") for reason in decision.reasons)
    assert decisions[0].tier != "premium"  # shorter than most training prompts
    assert decisions[1].tier == "premium"  # longer than any: the top of the score scale


def test_the_fallback_tier_setting_still_wins(router):
    engine = ModelRouter(RouterConfig(learned_fallback_tier="mini"), learned_router=router)
    decision = engine.choose(" ".join(CHAT * 30), "creative")
    assert decision.router == "fallback" and decision.tier == "mini"


def test_an_artifact_without_a_length_rule_falls_back_to_the_classifier(router, tmp_path):
    data = router_to_dict(router)
    data["domain"].pop("length_rule")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = load_router(path)
    assert old.domain.length_rule is None
    decision = ModelRouter(RouterConfig(), learned_router=old).choose(CHAT[0], "creative")
    assert decision.router == "fallback"
    assert not any(reason.startswith("prompt-length rule") for reason in decision.reasons)


def test_the_length_rule_round_trips_and_a_damaged_one_is_refused(router, tmp_path):
    loaded = load_router(save_router(router, tmp_path / "router.json"))
    assert loaded.domain.length_rule == router.domain.length_rule
    data = router_to_dict(router)
    data["domain"]["length_rule"]["lengths"].reverse()
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LearnedRouterError, match="damaged"):
        load_router(path)


def test_traffic_mostly_outside_the_domain_falls_back_as_a_whole(router, rows):
    """Once most recent prompts lie outside, even a prompt within the threshold falls back."""
    inside = rows[1]["prompt"]
    assert router.assess(inside).in_domain
    for index in range(TRAFFIC_MINIMUM):
        assert not router.assess(CHAT[index % len(CHAT)]).in_domain
    assessment = router.assess(inside)
    assert assessment.distance <= assessment.threshold
    assert not assessment.in_domain
    assert assessment.traffic_outside >= 0.5
    assert "traffic of another domain" in assessment.reason
    assert assessment.fallback_score == router.domain.length_rule.score(len(inside))
    # Traffic back in the domain: the window fills with prompts within, routing recovers.
    for row in synthetic_rows(TRAFFIC_WINDOW, seed=5):
        router.assess(row["prompt"])
    assert router.assess(inside).in_domain


def test_a_few_prompts_outside_do_not_shift_the_traffic():
    monitor = TrafficMonitor(window=100)
    shares = [monitor.record(index % 10 == 0) for index in range(300)]
    assert shares[: TRAFFIC_MINIMUM - 1] == [None] * (TRAFFIC_MINIMUM - 1)
    assert max(share for share in shares if share is not None) < 0.12
    assert shares[-1] == pytest.approx(0.1)  # the window keeps the last 100 (10 outside)


def test_a_file_of_another_domain_is_scored_by_the_length_rule(router):
    prompts = tuple(f"{CHAT[i % len(CHAT)]} {'Please be brief. ' * (i % 7)}" for i in range(60))
    rng = np.random.default_rng(0)
    dataset = RoutingDataset(
        sample_ids=tuple(f"c{i}" for i in range(60)),
        eval_names=("chat",) * 60,
        prompts=prompts,
        scores={STRONG: rng.integers(0, 2, 60), WEAK: rng.integers(0, 2, 60)},
    )
    scores, fell_back = artifact_scores_with_fallback(router, dataset, weak=WEAK)
    assert fell_back.all()
    np.testing.assert_allclose(scores, router.domain.length_rule.scores_of(prompts))
    unscored, none = artifact_scores_with_fallback(router, dataset, weak=WEAK, fallback=False)
    assert not none.any() and not np.allclose(unscored, scores)
