"""The one-prompt serving path (weights as arrays, every tree walked at once) gives the
batch path's scores to 1e-9, on prompts that exercise every feature, with and without
embedding features, in both modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routing_platform.engine.classifier import TASK_TYPES
from routing_platform.engine.quality.training import train_router
from tests.engine.quality.conftest import synthetic_rows

REFERENCE = Path(__file__).parent / "data" / "prompt_features_v3.json"
PROMPTS = [case["prompt"] for case in json.loads(REFERENCE.read_text(encoding="utf-8"))]
ANSWERS = ["The answer is B.", "Let me think 2 + 2 = 5 so", "#### 42", "Maybe 12 / 20 x 100 = 55?"]


def _training_set():
    rng = np.random.default_rng(5)
    rows = synthetic_rows(120)
    prompts = [row["prompt"] for row in rows] + PROMPTS * 3
    strong = np.array(
        [row["big/strong-model"] for row in rows] + list(rng.integers(0, 2, 3 * len(PROMPTS)))
    )
    weak = np.array(
        [row["small/weak-model"] for row in rows] + list(rng.integers(0, 2, 3 * len(PROMPTS)))
    )
    answers = [ANSWERS[i % len(ANSWERS)] for i in range(len(prompts))]
    types = [TASK_TYPES[i % len(TASK_TYPES)] for i in range(len(prompts))]
    return prompts, strong, weak, answers, types


@pytest.mark.parametrize(
    ("mode", "embeddings"), [("route", False), ("route", True), ("cascade", False)]
)
def test_single_prompt_scores_equal_the_batch_scores(mode, embeddings):
    prompts, strong, weak, answers, types = _training_set()
    router = train_router(
        prompts,
        strong,
        weak,
        task_types=types,
        weak_responses=answers if mode == "cascade" else None,
        mode=mode,
        embeddings=embeddings,
    )
    assert router.strong_trees is not None  # the trees' path is exercised too
    responses = answers if mode == "cascade" else None
    batch = router.scores(PROMPTS, types[: len(PROMPTS)], responses and responses[: len(PROMPTS)])
    single = [
        router.strong_probability(prompt, task, None if responses is None else responses[i])
        for i, (prompt, task) in enumerate(zip(PROMPTS, types, strict=False))
    ]
    assert np.ptp(batch) > 0.01  # the prompts get different scores
    np.testing.assert_allclose(single, batch, rtol=0, atol=1e-9)
