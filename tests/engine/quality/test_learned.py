"""The learned router: training, the JSON artifact round-trip, versions, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from routing_platform.engine.learned import (
    ARTIFACT_VERSION,
    LearnedRouterError,
    calibrate_threshold,
    load_router,
    router_to_dict,
    save_router,
)
from routing_platform.engine.learned.model import TreeStack
from routing_platform.engine.quality.crossval import fold_ids
from routing_platform.engine.quality.dataset import load_dataset
from routing_platform.engine.quality.metrics import evaluate_scores
from routing_platform.engine.quality.training import (
    BOOSTING,
    _fit_trees,
    normalise_outcomes,
    train_router,
)
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows(150)


@pytest.fixture(scope="module")
def router(rows):
    return train_router(
        [row["prompt"] for row in rows],
        np.array([row[STRONG] for row in rows], dtype=float),
        np.array([row[WEAK] for row in rows], dtype=float),
    )


def test_learns_which_prompts_need_the_strong_model(router, rows):
    """Hard (long, negated) prompts score higher than easy ones; scores are in [0, 1]."""
    hard = router.strong_probability(rows[0]["prompt"], "analysis")
    easy = router.strong_probability(rows[1]["prompt"], "analysis")
    assert 0.0 <= easy < hard <= 1.0


def test_round_trip_gives_identical_scores(router, rows, tmp_path):
    """Saved and loaded, the router scores every prompt exactly as before."""
    calibrated = router.calibrated(
        router.scores([row["prompt"] for row in rows]), target_strong_share=0.3
    )
    path = save_router(calibrated, tmp_path / "router.json")
    loaded = load_router(path)
    assert loaded.threshold == calibrated.threshold
    assert loaded.metadata["calibration"]["target"] == "strong_share"
    prompts = [row["prompt"] for row in rows[:20]]
    np.testing.assert_allclose(loaded.scores(prompts), calibrated.scores(prompts))
    for prompt in prompts[:5]:
        assert loaded.strong_probability(prompt, "analysis") == pytest.approx(
            calibrated.strong_probability(prompt, "analysis")
        )
        assert loaded.prefers_strong(prompt) == (
            calibrated.strong_probability(prompt) >= calibrated.threshold
        )


def test_unknown_version_and_foreign_files_are_refused(router, tmp_path):
    """Another version, another format, a damaged file: each a clear error."""
    data = router_to_dict(router)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**data, "version": ARTIFACT_VERSION + 1}))
    with pytest.raises(LearnedRouterError, match=f"version {ARTIFACT_VERSION + 1}.*retrain"):
        load_router(newer)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"weights": [1, 2]}))
    with pytest.raises(LearnedRouterError, match="not a learned-router artifact"):
        load_router(foreign)
    damaged = tmp_path / "damaged.json"
    data["features"]["means"] = data["features"]["means"][:-1]
    damaged.write_text(json.dumps(data))
    with pytest.raises(LearnedRouterError, match="damaged"):
        load_router(damaged)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x80\x04pickle")
    with pytest.raises(LearnedRouterError):
        load_router(garbage)
    with pytest.raises(LearnedRouterError, match="no such"):
        load_router(tmp_path / "absent.json")


def test_artifact_records_its_feature_set_and_serves_with_it(rows, tmp_path):
    """A feature set 2 router (an older artifact) still loads and scores with set 2; the
    default is set 4; an unknown set is refused with a clear error."""
    prompts = [row["prompt"] for row in rows]
    strong = np.array([row[STRONG] for row in rows], dtype=float)
    weak = np.array([row[WEAK] for row in rows], dtype=float)
    long_prompt = "Sam has 12 apples and buys 30 more. " * 40 + "How many does he have?"
    routers = {
        version: train_router(prompts, strong, weak, feature_version=version)
        for version in (2, 3, 4)
    }
    assert train_router(prompts[:30], strong[:30], weak[:30]).feature_version == 4
    for version, trained in routers.items():
        data = router_to_dict(trained)
        assert data["feature_version"] == version
        loaded = load_router(save_router(trained, tmp_path / f"v{version}.json"))
        assert loaded.feature_version == version
        assert loaded.strong_probability(long_prompt) == pytest.approx(
            trained.strong_probability(long_prompt), abs=1e-12
        )
        np.testing.assert_allclose(loaded.scores([long_prompt]), trained.scores([long_prompt]))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**router_to_dict(routers[3]), "feature_version": 99}))
    with pytest.raises(LearnedRouterError, match="feature set 99.*retrain"):
        load_router(unknown)


def test_cascade_router_reads_the_weak_answer(rows):
    """A cascade router uses the weak answer (wrong arithmetic -> strong); without one it
    judges the prompt alone instead of failing."""
    router = train_router(
        [row["prompt"] for row in rows],
        np.array([row[STRONG] for row in rows], dtype=float),
        np.array([row[WEAK] for row in rows], dtype=float),
        weak_responses=[row[f"{WEAK}|model_response"] for row in rows],
        mode="cascade",
    )
    prompt = rows[1]["prompt"]
    prompt_only = router.strong_probability(prompt)
    wrong = router.strong_probability(prompt, weak_response="Let me think 2 + 2 = 5 so")
    right = router.strong_probability(prompt, weak_response="The answer is B.")
    assert wrong > right
    assert right < prompt_only < wrong


def test_calibrate_to_a_strong_share():
    """The threshold sends the requested share of rows to the strong model."""
    scores = np.linspace(0, 1, 101)
    threshold, details = calibrate_threshold(scores, target_strong_share=0.2)
    assert np.mean(scores >= threshold) == pytest.approx(0.2, abs=0.011)
    assert details["strong_share"] == pytest.approx(0.2, abs=0.011)
    none, _ = calibrate_threshold(scores, target_strong_share=0.0)
    assert not np.any(scores >= none)


def test_calibrate_to_a_quality_target():
    """The highest threshold whose routing reaches 95% of the strong quality is chosen."""
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    strong = np.array([1, 1, 1, 1])
    weak = np.array([0, 0, 1, 1])
    threshold, details = calibrate_threshold(scores, strong=strong, weak=weak, target_quality=0.95)
    # 95% of 1.0 needs both weak failures (rows 0 and 1) sent to the strong model.
    assert threshold == 0.8
    assert details["quality"] == 1.0 and details["strong_share"] == 0.5
    with pytest.raises(LearnedRouterError, match="exactly one"):
        calibrate_threshold(scores)
    with pytest.raises(LearnedRouterError, match="outcomes"):
        calibrate_threshold(scores, target_quality=0.9)


def test_uncalibrated_router_cannot_decide(router):
    """prefers_strong needs a threshold and says how to get one."""
    with pytest.raises(LearnedRouterError, match="--target"):
        router.prefers_strong("hello")


def test_scores_on_other_scales_become_soft_labels():
    """1-10 judge scores are scaled to [0, 1] jointly; 0/1 outcomes are unchanged."""
    strong, weak = normalise_outcomes(np.array([10.0, 5.5]), np.array([1.0, 10.0]))
    np.testing.assert_allclose(strong, [1.0, 0.5])
    np.testing.assert_allclose(weak, [0.0, 1.0])
    same, _ = normalise_outcomes(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    assert same.tolist() == [1.0, 0.0]


def test_too_few_rows_are_refused():
    """Training needs a handful of labelled prompts."""
    with pytest.raises(LearnedRouterError, match="at least 10"):
        train_router(["a", "b"], np.array([1.0, 0.0]), np.array([0.0, 0.0]))


def test_trained_on_real_subjects_it_beats_random_on_unseen_ones(routellm_dir):
    """Trained on a third of four subject folds, it ranks the fifth fold's (unseen) subjects
    better than chance (kept small so the test stays fast)."""
    mmlu = load_dataset(routellm_dir / "mmlu_dev.csv")
    strong, weak = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
    folds = fold_ids(mmlu, 5)
    part = mmlu.subset(np.flatnonzero(folds != 4)[::3])
    held_out = mmlu.subset(np.flatnonzero(folds == 4))
    assert not set(part.eval_names) & set(held_out.eval_names)
    router = train_router(part.prompts, part.score(strong), part.score(weak))
    metrics = evaluate_scores(
        router.scores(held_out.prompts), held_out.score(strong), held_out.score(weak)
    )
    assert metrics.apgr > 0.55


def test_engine_router_uses_the_artifact_from_its_path(router, rows, tmp_path):
    """Contract 6: with learned_router_path set, the engine's tier comes from the artifact."""
    from routing_platform.engine.config import RouterConfig
    from routing_platform.engine.router import ModelRouter

    path = save_router(router, tmp_path / "engine.json")
    engine = ModelRouter(RouterConfig(learned_router_path=str(path)))
    decision = engine.choose(rows[0]["prompt"], "analysis")
    assert decision.strong_probability == pytest.approx(
        router.strong_probability(rows[0]["prompt"], "analysis")
    )


def test_exported_trees_predict_like_scikit_learn():
    """The boosted trees, exported to plain nodes, give scikit-learn's own probabilities,
    both row by row (the engine) and in bulk (backtests)."""
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(400, 4))
    labels = (matrix[:, 0] + matrix[:, 1] * matrix[:, 2] + rng.normal(size=400) > 0).astype(float)
    ensemble = _fit_trees(matrix, labels)
    reference = HistGradientBoostingClassifier(**BOOSTING, early_stopping=False, random_state=0)
    expected = reference.fit(matrix, labels.astype(int)).predict_proba(matrix)[:, 1]
    assert len(ensemble.trees) == BOOSTING["max_iter"]
    np.testing.assert_allclose(ensemble.probabilities(matrix), expected, atol=1e-9)
    (logit,) = TreeStack.of([ensemble]).logits(matrix[7])
    one = 1 / (1 + np.exp(-logit))
    assert one == pytest.approx(expected[7], abs=1e-9)


def test_router_averages_linear_and_boosted_estimates(router, rows):
    """The score averages the logistic and the boosted estimates; without trees it is the
    logistic one alone (so the trees change the score)."""
    from dataclasses import replace

    assert router.strong_trees is not None and router.weak_trees is not None
    prompts = [row["prompt"] for row in rows[:10]]
    linear_only = replace(router, strong_trees=None, weak_trees=None)
    assert not np.allclose(router.scores(prompts), linear_only.scores(prompts))
    assert router_to_dict(router)["boosted"] is not None
    assert router_to_dict(linear_only)["boosted"] is None


def test_damaged_trees_are_refused(router, tmp_path):
    """A tree whose node points outside it (or to an unknown feature) is a clear error, so a
    hand-edited artifact can never loop or index out of range at scoring time."""
    for damage in ("left", "feature"):
        data = json.loads(json.dumps(router_to_dict(router)))
        tree = data["boosted"]["strong_right"]["trees"][0]
        split = next(i for i, f in enumerate(tree["feature"]) if f >= 0)
        if damage == "left":
            tree["left"][split] = 0
        else:
            tree["feature"][split] = 10_000
        path = tmp_path / f"{damage}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(LearnedRouterError, match="damaged"):
            load_router(path)


def test_engine_premium_cut_is_the_artifacts_calibrated_threshold(router, rows, tmp_path):
    """Issue #8: with ROUTER_MODEL_PATH set, a prompt goes to premium exactly when its score
    reaches the artifact's calibrated threshold (not the fixed 0.6 cut); an uncalibrated
    artifact keeps the configured cut."""
    from routing_platform.engine.config import RouterConfig
    from routing_platform.engine.router import ModelRouter

    prompts = [row["prompt"] for row in rows]
    scores = router.scores(prompts)
    # A threshold between two neighbouring scores (no score sits on it, so the one-prompt
    # and batch paths' last-bit differences cannot flip a tie) and away from 0.6, so the
    # two cuts disagree.
    distinct = np.unique(scores)
    above = int(np.searchsorted(distinct, np.quantile(scores, 0.8)))
    threshold = float((distinct[above - 1] + distinct[above]) / 2)
    assert not 0.55 < threshold < 0.65
    calibrated = replace_threshold(router, threshold)
    path = save_router(calibrated, tmp_path / "calibrated.json")
    engine = ModelRouter(RouterConfig(learned_router_path=str(path), learned_premium_from=0.6))
    disagreements = 0
    for prompt, score in zip(prompts, scores, strict=True):
        decision = engine.choose(prompt, "analysis")
        assert (decision.tier == "premium") == (score >= threshold)
        disagreements += (score >= threshold) != (score >= 0.6)
    assert disagreements > 0
    assert any(f"premium from {threshold:.2f}" in r for r in decision.reasons)
    plain = ModelRouter(RouterConfig(learned_premium_from=0.6), learned_router=router)
    for prompt, score in zip(prompts[:30], scores[:30], strict=True):
        assert (plain.choose(prompt, "analysis").tier == "premium") == (score >= 0.6)


def replace_threshold(router, threshold):
    from dataclasses import replace

    return replace(router, threshold=threshold)
