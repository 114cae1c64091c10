"""Routers that a backtest compares: each gives every row a score (higher = strong model).

- ``random``: a seeded uniform score (APGR ~0.5 by construction).
- ``length``: the longer prompt goes to the strong model (the README's floor).
- ``heuristic``: the engine's complexity classifier score; in cascade mode, one minus the
  engine's confidence in the weak model's answer (the signal the engine escalates on),
  with the complexity score breaking ties.
- ``learned``: the learned router trained and scored out-of-fold (folds by MMLU subject
  and prompt hash, see :mod:`.crossval`): never scored on rows it trained on.
- ``oracle``: knows the outcomes (strong minus weak); the ceiling, for reference only.
- a learned-router artifact (``--router-file``): the trained router scores every row.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

import numpy as np
from scipy.stats import rankdata

from routing_platform.engine.classifier import classify
from routing_platform.engine.confidence import estimate
from routing_platform.engine.learned import (
    CASCADE,
    LearnedRouter,
    feature_matrix,
    task_type_for_eval,
    traffic_shifted,
)
from routing_platform.engine.quality.crossval import DEFAULT_FOLDS, Progress, fold_ids
from routing_platform.engine.quality.dataset import DatasetError, RoutingDataset
from routing_platform.engine.quality.embedding import get_embedder
from routing_platform.engine.quality.features import FEATURE_VERSION
from routing_platform.engine.quality.training import DEFAULT_REGULARIZATION, fit_router

ROUTER_NAMES = ("heuristic", "learned", "length", "random", "oracle")
BASELINES = ("random", "length")


def task_types(dataset: RoutingDataset) -> list[str]:
    """Each row's engine task type: recorded with the row, else implied by its eval set."""
    if dataset.task_types is not None:
        return list(dataset.task_types)
    return [task_type_for_eval(name) for name in dataset.eval_names]


def weak_answers(dataset: RoutingDataset, weak: str) -> tuple[str, ...]:
    answers = dataset.response(weak)
    if answers is None:
        raise DatasetError(
            f"cascade mode reads the weak model's answers, but {', '.join(dataset.sources)} "
            f"has no {weak + '|model_response'!r} column; use --mode route"
        )
    return answers


def heuristic_score(prompt: str, task_type: str) -> float:
    """The engine classifier's complexity score in [0, 1] (higher = harder)."""
    return float(classify(prompt, task_type).score)


def escalation_score(answer: str) -> float:
    """One minus the engine's confidence in an answer (no logprobs: its text heuristics)."""
    return 1.0 - float(estimate(answer).value)


def _random(dataset: RoutingDataset, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(dataset))


def _length(dataset: RoutingDataset) -> np.ndarray:
    return np.array([len(prompt) for prompt in dataset.prompts], dtype=float)


def _heuristic(dataset: RoutingDataset, *, weak: str, mode: str) -> np.ndarray:
    complexity = np.array(
        [heuristic_score(p, t) for p, t in zip(dataset.prompts, task_types(dataset), strict=True)]
    )
    if mode != CASCADE:
        return complexity
    escalation = np.array([escalation_score(answer) for answer in weak_answers(dataset, weak)])
    return escalation + 1e-3 * complexity


def training_matrix(
    dataset: RoutingDataset,
    *,
    weak: str,
    mode: str,
    embeddings: np.ndarray | None,
    feature_version: int = FEATURE_VERSION,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every row's features (with its prompt embedding as the last columns, when given)."""
    return feature_matrix(
        dataset.prompts,
        task_types(dataset),
        weak_answers(dataset, weak) if mode == CASCADE else None,
        mode=mode,
        embeddings=embeddings,
        feature_version=feature_version,
    )


class CrossValidation(TypedDict, total=False):
    """How `router_scores` cross-validates the learned router: `n_folds`
    (DEFAULT_FOLDS), `regularization` (DEFAULT_REGULARIZATION), `embeddings` (False; True:
    it also reads WordLlama prompt embeddings), `progress` (None) and `feature_version`
    (FEATURE_VERSION: the prompt feature set)."""

    n_folds: int
    regularization: float
    embeddings: bool
    progress: Progress | None
    feature_version: int


def _learned_cross_validated(
    dataset: RoutingDataset,
    *,
    strong: str,
    weak: str,
    mode: str,
    n_folds: int = DEFAULT_FOLDS,
    regularization: float = DEFAULT_REGULARIZATION,
    embeddings: bool = False,
    progress: Progress | None = None,
    feature_version: int = FEATURE_VERSION,
) -> np.ndarray:
    # Featurise every row once; each fold fits on its training rows only.
    vectors = get_embedder().embed_prompts(dataset.prompts, feature_version) if embeddings else None
    matrix, names = training_matrix(
        dataset, weak=weak, mode=mode, embeddings=vectors, feature_version=feature_version
    )
    strong_outcome, weak_outcome = dataset.score(strong), dataset.score(weak)
    folds = fold_ids(dataset, n_folds)
    scores = np.zeros(len(dataset))
    for fold in range(n_folds):
        train, test = folds != fold, folds == fold
        if not test.any():
            continue
        router = fit_router(
            matrix[train],
            names,
            strong_outcome[train],
            weak_outcome[train],
            mode=mode,
            regularization=regularization,
            feature_version=feature_version,
        )
        scores[test] = router.score_matrix(matrix[test])
        if progress is not None:
            progress(fold + 1, n_folds, f"fold {fold + 1}/{n_folds}")
    return scores


def artifact_scores(router: LearnedRouter, dataset: RoutingDataset, *, weak: str) -> np.ndarray:
    """A trained router's scores for every row (its own mode decides if answers are read)."""
    return artifact_scores_with_fallback(router, dataset, weak=weak, fallback=False)[0]


def artifact_scores_with_fallback(
    router: LearnedRouter, dataset: RoutingDataset, *, weak: str, fallback: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, fell_back): with `fallback`, rows outside the router's training domain are
    scored as the served router scores them: by the prompt-length rule on the learned
    score's scale; and when most rows lie outside, the file is another domain and every row
    falls back (the served router does so when most recent traffic lies outside).

    An artifact without a length rule falls back to the engine classifier, whose score lives
    on another scale: then, when both kinds of row are present, each group's scores become
    their ranks within the group, in (0, 1) (each scorer sends the same share of its own
    rows to the strong model at every cut).
    """
    responses = weak_answers(dataset, weak) if router.mode == CASCADE else None
    types = task_types(dataset)
    vectors = router.embed(dataset.prompts)
    scores = router.scores(dataset.prompts, types, responses, embeddings=vectors)
    outside = np.zeros(len(dataset), dtype=bool)
    if not fallback or vectors is None or router.domain is None:
        return scores, outside
    outside = ~router.in_domain(vectors)
    if traffic_shifted(outside):
        outside[:] = True
    if not outside.any():
        return scores, outside
    rule = router.domain.length_rule
    if rule is not None:
        scores[outside] = rule.scores_of([dataset.prompts[row] for row in np.flatnonzero(outside)])
        return scores, outside
    for row in np.flatnonzero(outside):
        scores[row] = heuristic_score(dataset.prompts[row], types[row])
    if not outside.all():
        for group in (outside, ~outside):
            scores[group] = (rankdata(scores[group]) - 0.5) / group.sum()
    return scores, outside


def router_scores(
    name: str,
    dataset: RoutingDataset,
    *,
    strong: str,
    weak: str,
    mode: str,
    seed: int = 0,
    **cross_validation: Unpack[CrossValidation],
) -> np.ndarray:
    """Scores of a named router on every row of `dataset` (the learned router's out of
    fold, cross-validated as `cross_validation` says)."""
    unknown = cross_validation.keys() - CrossValidation.__optional_keys__
    if unknown:
        raise TypeError(f"router_scores() got unexpected keyword arguments {sorted(unknown)}")
    if name == "random":
        return _random(dataset, seed)
    if name == "length":
        return _length(dataset)
    if name == "heuristic":
        return _heuristic(dataset, weak=weak, mode=mode)
    if name == "oracle":
        return dataset.score(strong) - dataset.score(weak)
    if name == "learned":
        return _learned_cross_validated(
            dataset, strong=strong, weak=weak, mode=mode, **cross_validation
        )
    raise ValueError(f"unknown router {name!r}; choose one of {', '.join(ROUTER_NAMES)}")
