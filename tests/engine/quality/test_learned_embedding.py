"""Learned routers with WordLlama embeddings: features, the domain summary, the artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routing_platform.engine.learned import (
    LearnedRouterError,
    load_router,
    router_to_dict,
    save_router,
)
from routing_platform.engine.quality.embedding import (
    EMBEDDING_WINDOW_CHARS,
    embedding_input,
    get_embedder,
    installed_info,
)
from routing_platform.engine.quality.training import train_router
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows

OTHER_DOMAIN = [
    "Write a haiku about autumn leaves falling on a quiet pond.",
    "Can you help me plan a birthday party for my five year old daughter?",
    "Translate 'good morning, how are you?' into French and Spanish.",
    "Draft a polite email asking my landlord to fix the heating this week.",
    "def add(a, b):\n    return a + b\n\n# write pytest unit tests for this function",
    "What's a good recipe for banana bread without eggs?",
]


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows(150)


@pytest.fixture(scope="module")
def router(rows):
    return train_router(
        [row["prompt"] for row in rows],
        np.array([row[STRONG] for row in rows], dtype=float),
        np.array([row[WEAK] for row in rows], dtype=float),
        embeddings=True,
        domain=True,
    )


def test_embedding_features_join_the_hand_features(router):
    """256 embedding columns follow the hand features; the artifact names the embedding."""
    names = [name for name in router.feature_names if name.startswith("embedding_")]
    assert len(names) == 256 and router.feature_names[-1] == "embedding_255"
    assert router.uses_embedding_features
    assert router.embedding == installed_info()


def test_prompts_of_another_domain_fall_outside(router, rows):
    """Chat and code prompts lie beyond the domain threshold; training-like prompts within."""
    outside = [router.assess(prompt).in_domain for prompt in OTHER_DOMAIN]
    assert not any(outside)
    fresh = [row["prompt"] for row in synthetic_rows(40, seed=99)]
    inside = np.mean([router.assess(prompt).in_domain for prompt in fresh])
    assert inside >= 0.9
    assessment = router.assess(OTHER_DOMAIN[0])
    assert assessment.distance > assessment.threshold
    assert "beyond the threshold" in assessment.reason


def test_round_trip_keeps_scores_and_domain(router, rows, tmp_path):
    """Saved and loaded, scores, distances and the threshold are unchanged."""
    loaded = load_router(save_router(router, tmp_path / "router.json"))
    prompts = [row["prompt"] for row in rows[:10]] + OTHER_DOMAIN
    np.testing.assert_allclose(loaded.scores(prompts), router.scores(prompts), rtol=1e-9)
    for prompt in prompts:
        before, after = router.assess(prompt), loaded.assess(prompt)
        assert after.in_domain == before.in_domain
        assert after.score == pytest.approx(before.score)
        assert after.distance == pytest.approx(before.distance, abs=1e-5)
    assert loaded.domain.threshold == router.domain.threshold


def test_batch_and_single_scores_agree(router, rows):
    """The backtest path (matrix) and the serving path (one prompt) give the same score."""
    prompts = [row["prompt"] for row in rows[:8]]
    single = [router.strong_probability(prompt) for prompt in prompts]
    np.testing.assert_allclose(router.scores(prompts), single, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("field", "value"), [("version", "0.0.1"), ("name", "wordllama/other_512")]
)
def test_an_embedding_mismatch_is_refused_with_a_clear_error(router, tmp_path, field, value):
    """An artifact trained with another embedding name or version does not load."""
    data = router_to_dict(router)
    data["embedding"][field] = value
    path = tmp_path / "router.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LearnedRouterError, match="trained with the embedding .*retrain"):
        load_router(path)


def test_embedding_features_without_an_embedding_are_refused(router, tmp_path):
    """A damaged artifact (embedding columns, no embedding record) is refused."""
    data = router_to_dict(router)
    data["embedding"] = None
    data["domain"] = None
    path = tmp_path / "router.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LearnedRouterError, match="damaged"):
        load_router(path)


def test_feature_set_4_embeds_the_window_of_a_long_prompt(router):
    """A set-4 router embeds the prompt's first and last 256 characters (a bounded cost);
    the one-prompt path and the batch path embed the same text; set 3 embeds it whole."""
    head = "Tom buys 3 apples for $2 each. " * 10
    tail = " How many dollars does he spend?"
    long_prompt = head + "He walks home and waters the garden.\n" * 60 + tail
    assert router.feature_version == 4
    window = embedding_input(long_prompt, 4)
    assert len(window) == 2 * EMBEDDING_WINDOW_CHARS + 1 < len(long_prompt)
    assert embedding_input(long_prompt, 3) == long_prompt
    embedder = get_embedder()
    np.testing.assert_array_equal(router.embed([long_prompt])[0], embedder.embed(window))
    distance = router.assess(long_prompt).distance
    assert distance == pytest.approx(router.domain.distance(embedder.embed(window)), abs=1e-6)
    assert distance != pytest.approx(router.domain.distance(embedder.embed(long_prompt)), abs=1e-6)
