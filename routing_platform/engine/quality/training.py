"""Fitting the learned router (scikit-learn; serving never needs it).

Two estimators over hand-crafted text features
(:mod:`routing_platform.engine.quality.features`), each fitted twice: once for P(strong
model right | x), once for P(weak model right | x). The estimators are a regularised
logistic model and small gradient-boosted trees (shallow, few, large leaves; they catch
interactions such as "many quantities *and* a long question"), exported to plain numbers
(:mod:`routing_platform.engine.learned.model`). The router's score is 0.5 + (the mean of
the two estimated differences) / 2: the strong model's expected quality gain over the weak
one, mapped to [0, 1]. Averaging the two estimators raised the cross-validated APGR on
both development files over either alone, and ranking by expected gain beat the "weak
model fails" and "only the strong model is right" labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from routing_platform.engine.learned import (
    MODES,
    ROUTE,
    DomainSummary,
    LearnedRouter,
    LearnedRouterError,
    LinearModel,
    Tree,
    TreeEnsemble,
    feature_matrix,
)
from routing_platform.engine.quality.embedding import (
    EmbeddingInfo,
    get_embedder,
    installed_info,
)
from routing_platform.engine.quality.features import FEATURE_VERSION

# The training prompts' summary in embedding space: k-means centroids, and the distance
# (1 - cosine similarity to the nearest centroid) that DOMAIN_QUANTILE of them stay within.
DOMAIN_CLUSTERS = 64
DOMAIN_QUANTILE = 0.99
DEFAULT_REGULARIZATION = 0.03  # scikit-learn's C: smaller = simpler model (best of 0.01-1 in CV)
SCORE_DEFINITION = "0.5 + (P(strong right) - P(weak right)) / 2, P averaged over estimators"
# Gradient-boosted trees: few, shallow, with large leaves (a fixed setting; on the
# development files it was compared with two others, see docs/decisions/0004-learned-router-model.md).
BOOSTING = {
    "learning_rate": 0.05,
    "max_iter": 60,
    "max_depth": 3,
    "min_samples_leaf": 30,
    "l2_regularization": 1.0,
}


def summarise_domain(
    embeddings: np.ndarray,
    *,
    clusters: int = DOMAIN_CLUSTERS,
    quantile: float = DOMAIN_QUANTILE,
) -> DomainSummary:
    """k-means (seeded) over the training prompts' embeddings, and the distance threshold."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    count = max(1, min(clusters, len(embeddings) // 10))
    model = KMeans(n_clusters=count, n_init=4, random_state=0).fit(embeddings)
    centroids = model.cluster_centers_.astype(np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids /= np.where(norms > 0, norms, 1.0)
    summary = DomainSummary(centroids, 0.0, quantile)
    threshold = float(np.quantile(summary.distances(embeddings), quantile))
    return replace(summary, threshold=round(threshold, 6))


def normalise_outcomes(strong: np.ndarray, weak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes as soft labels in [0, 1]: 0/1 stays, other scales are min-max scaled jointly."""
    strong = np.asarray(strong, dtype=float)
    weak = np.asarray(weak, dtype=float)
    both = np.concatenate([strong, weak])
    low, high = float(both.min()), float(both.max())
    if low >= 0 and high <= 1:
        return strong, weak
    if high == low:
        return np.zeros_like(strong), np.zeros_like(weak)
    return (strong - low) / (high - low), (weak - low) / (high - low)


def _soft_labels(matrix: np.ndarray, target: np.ndarray):
    """(rows, labels, weights): 0/1 targets as they are; soft ones as each row twice."""
    n = len(target)
    if np.all((target == 0) | (target == 1)):
        return matrix, target.astype(int), np.ones(n)
    labels = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    return np.vstack([matrix, matrix]), labels, np.concatenate([target, 1.0 - target])


def _fit_soft_logistic(matrix: np.ndarray, target: np.ndarray, regularization: float):
    """Logistic regression on soft labels: each row once as 1 (weight y), once as 0 (1 - y)."""
    rows, labels, weights = _soft_labels(matrix, target)
    if len(set(labels[weights > 0].tolist())) < 2:
        # Every row has the same outcome: a constant model (intercept = that rate).
        rate = float(np.clip(np.average(target), 1e-6, 1 - 1e-6))
        return LinearModel(math.log(rate / (1 - rate)), tuple(0.0 for _ in range(matrix.shape[1])))
    model = LogisticRegression(C=regularization, max_iter=5000)
    model.fit(rows, labels, sample_weight=weights)
    return LinearModel(float(model.intercept_[0]), tuple(float(w) for w in model.coef_[0]))


def _fit_trees(matrix: np.ndarray, target: np.ndarray) -> TreeEnsemble | None:
    """Gradient-boosted trees on soft labels, exported to plain nodes (None if one class)."""
    rows, labels, weights = _soft_labels(matrix, target)
    if len(set(labels[weights > 0].tolist())) < 2:
        return None
    model = HistGradientBoostingClassifier(**BOOSTING, early_stopping=False, random_state=0)
    model.fit(rows, labels, sample_weight=weights)
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(
            Tree(
                feature=tuple(
                    -1 if leaf[i] else int(f) for i, f in enumerate(nodes["feature_idx"])
                ),
                threshold=tuple(float(x) for x in nodes["num_threshold"]),
                left=tuple(int(x) for x in nodes["left"]),
                right=tuple(int(x) for x in nodes["right"]),
                value=tuple(float(x) for x in nodes["value"]),
            )
        )
    return TreeEnsemble(float(np.ravel(model._baseline_prediction)[0]), tuple(trees))


def train_router(
    texts: Sequence[str],
    strong: np.ndarray,
    weak: np.ndarray,
    *,
    task_types: Sequence[str] | None = None,
    weak_responses: Sequence[str | None] | None = None,
    mode: str = ROUTE,
    regularization: float = DEFAULT_REGULARIZATION,
    boosting: bool = True,
    embeddings: bool = False,
    domain: bool = False,
    metadata: dict | None = None,
    feature_version: int = FEATURE_VERSION,
) -> LearnedRouter:
    """Fit a router on labelled outcomes (`strong`/`weak`: each model's score per prompt).

    `embeddings`: WordLlama prompt embeddings join the features. `domain`: the router keeps
    a summary of its training prompts in embedding space (the out-of-domain fallback).
    """
    if mode not in MODES:
        raise LearnedRouterError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if task_types is None:
        task_types = ["analysis"] * len(texts)
    vectors = get_embedder().embed_prompts(texts, feature_version) if embeddings or domain else None
    matrix, names = feature_matrix(
        texts,
        task_types,
        weak_responses,
        mode=mode,
        embeddings=vectors if embeddings else None,
        feature_version=feature_version,
    )
    router = fit_router(
        matrix,
        names,
        strong,
        weak,
        mode=mode,
        regularization=regularization,
        boosting=boosting,
        metadata=metadata,
        embedding=None if vectors is None else installed_info(),
        domain=summarise_domain(vectors) if domain and vectors is not None else None,
        feature_version=feature_version,
    )
    return with_length_rule(router, texts, router.score_matrix(matrix))


def with_length_rule(
    router: LearnedRouter, texts: Sequence[str], scores: np.ndarray
) -> LearnedRouter:
    """The router whose domain summary also carries the prompt-length rule (what a prompt
    outside the domain is routed by), fitted on the training prompts and their `scores`
    (out-of-fold when there are some)."""
    if router.domain is None:
        return router
    lengths = np.array([len(text) for text in texts], dtype=float)
    return replace(router, domain=router.domain.with_length_rule(lengths, scores))


def fit_router(
    matrix: np.ndarray,
    feature_names: Sequence[str],
    strong: np.ndarray,
    weak: np.ndarray,
    *,
    mode: str = ROUTE,
    regularization: float = DEFAULT_REGULARIZATION,
    boosting: bool = True,
    metadata: dict | None = None,
    embedding: EmbeddingInfo | None = None,
    domain: DomainSummary | None = None,
    feature_version: int = FEATURE_VERSION,
) -> LearnedRouter:
    """Fit a router on rows already featurised (see :func:`feature_matrix`, in feature set
    `feature_version`); `embedding` names the embedding behind any ``embedding_*`` columns
    and the `domain` summary."""
    if len(matrix) < 10:
        raise LearnedRouterError(f"need at least 10 labelled prompts to train, got {len(matrix)}")
    strong_target, weak_target = normalise_outcomes(strong, weak)
    means = matrix.mean(axis=0)
    scales = matrix.std(axis=0)
    scales[scales < 1e-9] = 1.0
    standardised = (matrix - means) / scales
    info = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": len(matrix),
        "regularization": regularization,
        "boosting": dict(BOOSTING) if boosting else None,
        "strong_quality": float(np.mean(strong)),
        "weak_quality": float(np.mean(weak)),
        "score": SCORE_DEFINITION,
    }
    info.update(metadata or {})
    strong_trees = weak_trees = None
    if boosting:
        strong_trees = _fit_trees(matrix, strong_target)
        weak_trees = _fit_trees(matrix, weak_target)
        if strong_trees is None or weak_trees is None:
            strong_trees = weak_trees = None  # one model always right or wrong: linear only
    return LearnedRouter(
        mode=mode,
        feature_names=tuple(feature_names),
        means=tuple(float(x) for x in means),
        scales=tuple(float(x) for x in scales),
        strong_model=_fit_soft_logistic(standardised, strong_target, regularization),
        weak_model=_fit_soft_logistic(standardised, weak_target, regularization),
        metadata=info,
        strong_trees=strong_trees,
        weak_trees=weak_trees,
        embedding=embedding,
        domain=domain,
        feature_version=feature_version,
    )
