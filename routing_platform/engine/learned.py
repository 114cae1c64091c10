"""The learned router (contract 6): which prompts need the strong model, learned from outcomes.

Two estimators over hand-crafted text features
(:mod:`routing_platform.engine.quality.features`), each fitted twice: once for P(strong
model right | x), once for P(weak model right | x). The estimators are a regularised
logistic model and small gradient-boosted trees (shallow, few, large leaves; they catch
interactions such as "many quantities *and* a long question"). The router's score is
0.5 + (the mean of the two estimated differences) / 2: the strong model's expected quality
gain over the weak one, mapped to [0, 1] (0.5 = no gain). Averaging the two estimators
raised the cross-validated APGR on both development files over either alone. Ranking prompts by expected gain is what maximises the area under the
quality-vs-cost curve (APGR); it beat the "weak model fails" and "only the strong model is
right" labels in cross-validation on both development files. In ``cascade`` mode the features also describe the weak model's answer
(final answer present, cut off, hedging, arithmetic that does not add up).

The artifact is one JSON file: weights, the trees' nodes, feature scaling, the calibrated
threshold and metadata, with ``format`` and ``version``. Loading never unpickles anything
(so an artifact from elsewhere cannot run code), does not depend on the scikit-learn
version, and scoring one prompt is a few dozen regular expressions, two dot products and
a walk down each small tree (pure Python, well under a millisecond; scikit-learn is only
needed to train).

Usage::

    router = load_router("router.json")
    router.strong_probability("What is 2 + 2?", "analysis")   # 0..1
    router.prefers_strong("What is 2 + 2?", "analysis")       # score >= calibrated threshold
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from routing_platform.engine.classifier import TASK_TYPES
from routing_platform.engine.quality.embedding import (
    EmbeddingInfo,
    get_embedder,
    installed_info,
)
from routing_platform.engine.quality.features import (
    FEATURE_VERSION,
    answer_features,
    prompt_features,
)

ARTIFACT_FORMAT = "routing-platform/learned-router"
# 3: optional prompt embeddings (as features and/or the domain summary). 2 still loads.
ARTIFACT_VERSION = 3
READABLE_VERSIONS = (2, 3)
ROUTE = "route"
CASCADE = "cascade"
MODES = (ROUTE, CASCADE)
EMBEDDING_PREFIX = "embedding_"
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


class LearnedRouterError(ValueError):
    """A learned-router artifact or input that cannot be used (the message says why)."""


def task_type_for_eval(eval_name: str) -> str:
    """The engine task type that an evaluation set's prompts stand for."""
    name = eval_name.lower()
    if name.startswith(("gsm8k", "math", "mgsm")):
        return "reasoning"
    if name.startswith(("humaneval", "mbpp", "code")):
        return "code"
    return "analysis"


def _feature_row(
    text: str, task_type: str, weak_response: str | None, *, mode: str
) -> dict[str, float]:
    row = prompt_features(text)
    known = task_type if task_type in TASK_TYPES else "analysis"
    for name in TASK_TYPES:
        row[f"task_{name}"] = 1.0 if name == known else 0.0
    if mode == CASCADE:
        row.update(answer_features(weak_response))
    return row


def feature_matrix(
    texts: Sequence[str],
    task_types: Sequence[str],
    weak_responses: Sequence[str | None] | None,
    *,
    mode: str,
    feature_names: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows of features (and their names) for many prompts.

    `embeddings` (one row per prompt) become the last columns, ``embedding_0`` onwards.
    """
    if mode == CASCADE and weak_responses is None:
        raise LearnedRouterError(
            "cascade mode reads the weak model's answers: the dataset needs a "
            "`<weak model>|model_response` column"
        )
    rows = [
        _feature_row(
            text,
            task_type,
            None if weak_responses is None else weak_responses[index],
            mode=mode,
        )
        for index, (text, task_type) in enumerate(zip(texts, task_types, strict=True))
    ]
    if feature_names is not None:
        names = tuple(name for name in feature_names if not name.startswith(EMBEDDING_PREFIX))
    else:
        names = tuple(rows[0]) if rows else ()
    matrix = np.array([[row.get(name, 0.0) for name in names] for row in rows], dtype=float)
    matrix = matrix.reshape(len(rows), len(names))
    if embeddings is None:
        return matrix, names
    embeddings = np.asarray(embeddings, dtype=float).reshape(len(rows), -1)
    embedding_names = tuple(f"{EMBEDDING_PREFIX}{i}" for i in range(embeddings.shape[1]))
    return np.hstack([matrix, embeddings]), names + embedding_names


@dataclass(frozen=True)
class DomainSummary:
    """Where the training prompts lie in embedding space: unit-length k-means centroids, and
    the distance (1 - cosine similarity to the nearest centroid) that `quantile` of the
    training prompts stay within. A prompt farther out is unlike anything trained on."""

    centroids: np.ndarray
    threshold: float
    quantile: float

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        similarity = np.asarray(embeddings, dtype=np.float32) @ self.centroids.T
        return 1.0 - similarity.max(axis=1)

    def distance(self, embedding: np.ndarray) -> float:
        return float(1.0 - (self.centroids @ embedding).max())

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "quantile": self.quantile,
            "centroids": [[round(float(x), 6) for x in row] for row in self.centroids],
        }

    @classmethod
    def from_dict(cls, data: dict, dim: int) -> DomainSummary:
        centroids = np.asarray(data["centroids"], dtype=np.float32)
        if centroids.ndim != 2 or centroids.shape[1] != dim or len(centroids) == 0:
            raise ValueError(f"domain centroids are not k x {dim}")
        return cls(centroids, float(data["threshold"]), float(data["quantile"]))


def summarise_domain(
    embeddings: np.ndarray,
    *,
    clusters: int = DOMAIN_CLUSTERS,
    quantile: float = DOMAIN_QUANTILE,
) -> DomainSummary:
    """k-means (seeded) over the training prompts' embeddings, and the distance threshold."""
    from sklearn.cluster import KMeans

    embeddings = np.asarray(embeddings, dtype=np.float32)
    count = max(1, min(clusters, len(embeddings) // 10))
    model = KMeans(n_clusters=count, n_init=4, random_state=0).fit(embeddings)
    centroids = model.cluster_centers_.astype(np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids /= np.where(norms > 0, norms, 1.0)
    summary = DomainSummary(centroids, 0.0, quantile)
    threshold = float(np.quantile(summary.distances(embeddings), quantile))
    return replace(summary, threshold=round(threshold, 6))


@dataclass(frozen=True)
class Assessment:
    """One prompt judged by a learned router: its score, and whether it is in its domain."""

    score: float
    in_domain: bool = True
    distance: float | None = None
    threshold: float | None = None

    @property
    def reason(self) -> str:
        if self.distance is None:
            return "no domain summary in the router"
        relation = "within" if self.in_domain else "beyond"
        return (
            f"distance to the training prompts {self.distance:.3f} {relation} the "
            f"threshold {self.threshold:.3f}"
        )


@dataclass(frozen=True)
class LinearModel:
    """A logistic model over standardised features: sigmoid(intercept + w . x)."""

    intercept: float
    coefficients: tuple[float, ...]

    def logit(self, standardised: Sequence[float]) -> float:
        return self.intercept + math.fsum(
            w * x for w, x in zip(self.coefficients, standardised, strict=True)
        )

    def probabilities(self, standardised: np.ndarray) -> np.ndarray:
        logits = self.intercept + standardised @ np.asarray(self.coefficients)
        return 1.0 / (1.0 + np.exp(-logits))


@dataclass(frozen=True)
class Tree:
    """One regression tree: node i is a leaf when feature[i] < 0, else rows with
    x[feature[i]] <= threshold[i] go to left[i], the others to right[i]."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]
    # The same nodes as (feature, threshold, left, right, value) tuples: one index per step.
    _nodes: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nodes = tuple(
            zip(self.feature, self.threshold, self.left, self.right, self.value, strict=True)
        )
        object.__setattr__(self, "_nodes", nodes)

    def output(self, row: Sequence[float]) -> float:
        nodes = self._nodes
        node = nodes[0]
        while node[0] >= 0:
            node = nodes[node[2]] if row[node[0]] <= node[1] else nodes[node[3]]
        return node[4]

    def outputs(self, matrix: np.ndarray) -> np.ndarray:
        feature = np.asarray(self.feature)
        threshold = np.asarray(self.threshold)
        left, right = np.asarray(self.left), np.asarray(self.right)
        nodes = np.zeros(len(matrix), dtype=int)
        rows = np.arange(len(matrix))
        for _ in range(len(feature)):
            split = feature[nodes]
            active = split >= 0
            if not active.any():
                break
            goes_left = matrix[rows[active], split[active]] <= threshold[nodes[active]]
            nodes[active] = np.where(goes_left, left[nodes[active]], right[nodes[active]])
        return np.asarray(self.value)[nodes]

    def to_dict(self) -> dict:
        return {
            "feature": list(self.feature),
            "threshold": list(self.threshold),
            "left": list(self.left),
            "right": list(self.right),
            "value": list(self.value),
        }

    @classmethod
    def from_dict(cls, data: dict, n_features: int) -> Tree:
        tree = cls(
            feature=tuple(int(x) for x in data["feature"]),
            threshold=tuple(float(x) for x in data["threshold"]),
            left=tuple(int(x) for x in data["left"]),
            right=tuple(int(x) for x in data["right"]),
            value=tuple(float(x) for x in data["value"]),
        )
        size = len(tree.feature)
        sizes = {len(tree.threshold), len(tree.left), len(tree.right), len(tree.value)}
        if size == 0 or sizes != {size}:
            raise ValueError("tree arrays of different lengths")
        for node, feature in enumerate(tree.feature):
            if feature >= n_features:
                raise ValueError(f"tree uses feature {feature} of {n_features}")
            # Children always come after their parent, so a walk always ends at a leaf.
            if feature >= 0 and not (
                node < tree.left[node] < size and node < tree.right[node] < size
            ):
                raise ValueError("tree node points outside the tree")
        return tree


@dataclass(frozen=True)
class TreeEnsemble:
    """Gradient-boosted trees on raw features: P = sigmoid(baseline + sum of tree outputs)."""

    baseline: float
    trees: tuple[Tree, ...]

    def logit(self, row: Sequence[float]) -> float:
        return self.baseline + sum([tree.output(row) for tree in self.trees])

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        logits = np.full(len(matrix), self.baseline, dtype=float)
        for tree in self.trees:
            logits += tree.outputs(matrix)
        return 1.0 / (1.0 + np.exp(-logits))

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "trees": [tree.to_dict() for tree in self.trees]}

    @classmethod
    def from_dict(cls, data: dict, n_features: int) -> TreeEnsemble:
        return cls(
            float(data["baseline"]),
            tuple(Tree.from_dict(tree, n_features) for tree in data["trees"]),
        )


def _combine(strong_right, weak_right):
    """The routing score from P(strong right) and P(weak right) (floats or arrays).

    0.5 + (P(strong right) - P(weak right)) / 2: 0.5 = no expected gain from the strong
    model, 1 = the strong model surely right and the weak surely wrong. Ranking by the
    expected gain gave the highest APGR in cross-validation (against P(weak wrong) and
    P(strong right) x P(weak wrong)).
    """
    return 0.5 + 0.5 * (strong_right - weak_right)


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


@dataclass(frozen=True)
class LearnedRouter:
    """A trained router. `threshold`: scores at or above it go to the strong model."""

    mode: str
    feature_names: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    strong_model: LinearModel
    weak_model: LinearModel
    threshold: float | None = None
    metadata: dict = field(default_factory=dict)
    strong_trees: TreeEnsemble | None = None
    weak_trees: TreeEnsemble | None = None
    # The embedding it was trained with (features and/or domain), and its training domain.
    embedding: EmbeddingInfo | None = None
    domain: DomainSummary | None = None

    @property
    def uses_embedding_features(self) -> bool:
        return bool(self.feature_names) and self.feature_names[-1].startswith(EMBEDDING_PREFIX)

    # -- scoring -------------------------------------------------------------------------
    def _standardise(self, matrix: np.ndarray) -> np.ndarray:
        return (matrix - np.asarray(self.means)) / np.asarray(self.scales)

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """The prompts' embeddings, or None for a router that uses none."""
        if self.embedding is None:
            return None
        return get_embedder().embed_many(texts)

    def scores(
        self,
        texts: Sequence[str],
        task_types: Sequence[str] | None = None,
        weak_responses: Sequence[str | None] | None = None,
        *,
        embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """The score of many prompts at once (backtests)."""
        if task_types is None:
            task_types = ["analysis"] * len(texts)
        if self.uses_embedding_features and embeddings is None:
            embeddings = self.embed(texts)
        matrix, _ = feature_matrix(
            texts,
            task_types,
            weak_responses,
            mode=self.mode,
            feature_names=self.feature_names,
            embeddings=embeddings if self.uses_embedding_features else None,
        )
        return self.score_matrix(matrix)

    def in_domain(self, embeddings: np.ndarray) -> np.ndarray:
        """Per prompt: True when it lies within the training domain (always, without one)."""
        if self.domain is None:
            return np.ones(len(embeddings), dtype=bool)
        return self.domain.distances(embeddings) <= self.domain.threshold

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Scores of rows already featurised in `feature_names` order."""
        standardised = self._standardise(matrix)
        strong = self.strong_model.probabilities(standardised)
        weak = self.weak_model.probabilities(standardised)
        if self.strong_trees is not None and self.weak_trees is not None:
            strong = (strong + self.strong_trees.probabilities(matrix)) / 2
            weak = (weak + self.weak_trees.probabilities(matrix)) / 2
        return _combine(strong, weak)

    def strong_probability(
        self, text: str, task_type: str = "analysis", weak_response: str | None = None
    ) -> float:
        """How much the strong model is needed, in [0, 1]: 0.5 + (P(S) - P(W)) / 2.

        P(S) - P(W) is the strong model's expected gain: for 0/1 outcomes, the chance that
        the weak model fails where the strong one would not, net of the reverse. 0.5 means
        no expected gain; 0.6 (the engine's default premium threshold) a gain of 0.2.
        Compare it with `threshold`, calibrated on the user's rows. A cascade-mode router
        reads the weak model's answer; without one it judges the prompt alone (its answer
        features held at their training average), so the engine never fails on it.
        """
        return self.assess(text, task_type, weak_response).score

    def assess(
        self, text: str, task_type: str = "analysis", weak_response: str | None = None
    ) -> Assessment:
        """The prompt's score, and whether it lies within the training domain (embedded once)."""
        vector = get_embedder().embed(text) if self.embedding is not None else None
        score = self._score_one(text, task_type, weak_response, vector)
        if self.domain is None or vector is None:
            return Assessment(score)
        distance = self.domain.distance(vector)
        return Assessment(score, distance <= self.domain.threshold, distance, self.domain.threshold)

    def _score_one(
        self, text: str, task_type: str, weak_response: str | None, vector: np.ndarray | None
    ) -> float:
        row = _feature_row(text, task_type, weak_response, mode=self.mode)
        if self.mode == CASCADE and weak_response is None:
            # No answer yet (the engine deciding before any call): the answer features stay
            # at their training average, so they add nothing and the prompt alone decides.
            row = {name: value for name, value in row.items() if not name.startswith("answer_")}
        if self.uses_embedding_features and vector is not None:
            row.update((f"{EMBEDDING_PREFIX}{i}", x) for i, x in enumerate(vector.tolist()))
        raw = [
            row.get(name, mean) for name, mean in zip(self.feature_names, self.means, strict=True)
        ]
        standardised = [
            (value - mean) / scale
            for value, mean, scale in zip(raw, self.means, self.scales, strict=True)
        ]
        strong = _sigmoid(self.strong_model.logit(standardised))
        weak = _sigmoid(self.weak_model.logit(standardised))
        if self.strong_trees is not None and self.weak_trees is not None:
            strong = (strong + _sigmoid(self.strong_trees.logit(raw))) / 2
            weak = (weak + _sigmoid(self.weak_trees.logit(raw))) / 2
        return float(_combine(strong, weak))

    def prefers_strong(
        self, text: str, task_type: str = "analysis", weak_response: str | None = None
    ) -> bool:
        """True when the prompt's score reaches the calibrated threshold."""
        if self.threshold is None:
            raise LearnedRouterError(
                "this router has no calibrated threshold: train it with --target-strong-share "
                "or --target-quality"
            )
        return self.strong_probability(text, task_type, weak_response) >= self.threshold

    # -- calibration ---------------------------------------------------------------------
    def calibrated(
        self,
        scores: np.ndarray,
        *,
        strong: np.ndarray | None = None,
        weak: np.ndarray | None = None,
        target_strong_share: float | None = None,
        target_quality: float | None = None,
    ) -> LearnedRouter:
        """This router with its threshold set on `scores` (see :func:`calibrate_threshold`)."""
        threshold, details = calibrate_threshold(
            scores,
            strong=strong,
            weak=weak,
            target_strong_share=target_strong_share,
            target_quality=target_quality,
        )
        metadata = dict(self.metadata)
        metadata["calibration"] = details
        return replace(self, threshold=threshold, metadata=metadata)

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "feature_version": FEATURE_VERSION,
            "mode": self.mode,
            "threshold": self.threshold,
            "features": {
                "names": list(self.feature_names),
                "means": list(self.means),
                "scales": list(self.scales),
            },
            "models": {
                "strong_right": {
                    "intercept": self.strong_model.intercept,
                    "coefficients": list(self.strong_model.coefficients),
                },
                "weak_right": {
                    "intercept": self.weak_model.intercept,
                    "coefficients": list(self.weak_model.coefficients),
                },
            },
            "boosted": (
                None
                if self.strong_trees is None or self.weak_trees is None
                else {
                    "strong_right": self.strong_trees.to_dict(),
                    "weak_right": self.weak_trees.to_dict(),
                }
            ),
            "embedding": None if self.embedding is None else self.embedding.as_dict(),
            "domain": None if self.domain is None else self.domain.to_dict(),
            "metadata": self.metadata,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n")
        return path


def calibrate_threshold(
    scores: np.ndarray,
    *,
    strong: np.ndarray | None = None,
    weak: np.ndarray | None = None,
    target_strong_share: float | None = None,
    target_quality: float | None = None,
) -> tuple[float, dict]:
    """The score threshold that reaches a target, measured on the user's own rows.

    - `target_strong_share` (0-1): send about that share of calls to the strong model
      (RouteLLM's calibration: the (1 - share) quantile of the scores).
    - `target_quality` (0-1, a share of the strong model's quality, e.g. 0.95): the highest
      threshold whose routing reaches that share of always-strong quality on these rows
      (needs the rows' `strong` and `weak` outcomes).
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        raise LearnedRouterError("no rows to calibrate on")
    if (target_strong_share is None) == (target_quality is None):
        raise LearnedRouterError("give exactly one of target_strong_share or target_quality")
    ordered = np.sort(scores)[::-1]
    if target_strong_share is not None:
        if not 0 <= target_strong_share <= 1:
            raise LearnedRouterError(
                f"target strong share must be in [0, 1], not {target_strong_share}"
            )
        count = round(target_strong_share * len(scores))
        threshold = math.inf if count == 0 else float(ordered[count - 1])
        achieved = float(np.mean(scores >= threshold))
        return threshold, {
            "target": "strong_share",
            "target_value": target_strong_share,
            "threshold": threshold,
            "strong_share": achieved,
            "rows": len(scores),
        }
    if strong is None or weak is None:
        raise LearnedRouterError("a quality target needs the rows' strong and weak outcomes")
    if not 0 < target_quality <= 1.5:
        raise LearnedRouterError(
            f"target quality is a share of the strong model's quality (e.g. 0.95), "
            f"not {target_quality}"
        )
    strong = np.asarray(strong, dtype=float)
    weak = np.asarray(weak, dtype=float)
    goal = target_quality * float(strong.mean())
    # Walk thresholds from the highest score down; take the first that reaches the goal.
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    gains = np.cumsum((strong - weak)[order])
    quality = (weak.sum() + gains) / len(scores)
    last_of_tie = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    threshold = math.inf
    reached_quality = float(weak.mean())
    share = 0.0
    if reached_quality < goal:
        for index in last_of_tie:
            if quality[index] >= goal - 1e-12:
                threshold = float(sorted_scores[index])
                reached_quality = float(quality[index])
                share = (index + 1) / len(scores)
                break
        else:
            threshold = float(sorted_scores[-1])
            reached_quality = float(quality[-1])
            share = 1.0
    return threshold, {
        "target": "quality",
        "target_value": target_quality,
        "threshold": threshold,
        "quality": reached_quality,
        "strong_quality": float(strong.mean()),
        "strong_share": share,
        "rows": len(scores),
    }


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


def _fit_soft_logistic(matrix: np.ndarray, target: np.ndarray, regularization: float):
    """Logistic regression on soft labels: each row once as 1 (weight y), once as 0 (1 - y)."""
    from sklearn.linear_model import LogisticRegression

    n = len(target)
    if np.all((target == 0) | (target == 1)):
        labels, weights, rows = target.astype(int), np.ones(n), matrix
    else:
        labels = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
        weights = np.concatenate([target, 1.0 - target])
        rows = np.vstack([matrix, matrix])
    if len(set(labels[weights > 0].tolist())) < 2:
        # Every row has the same outcome: a constant model (intercept = that rate).
        rate = float(np.clip(np.average(target), 1e-6, 1 - 1e-6))
        return LinearModel(math.log(rate / (1 - rate)), tuple(0.0 for _ in range(matrix.shape[1])))
    model = LogisticRegression(C=regularization, max_iter=5000)
    model.fit(rows, labels, sample_weight=weights)
    return LinearModel(float(model.intercept_[0]), tuple(float(w) for w in model.coef_[0]))


def _soft_labels(matrix: np.ndarray, target: np.ndarray):
    n = len(target)
    if np.all((target == 0) | (target == 1)):
        return matrix, target.astype(int), np.ones(n)
    labels = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    return np.vstack([matrix, matrix]), labels, np.concatenate([target, 1.0 - target])


def _fit_trees(matrix: np.ndarray, target: np.ndarray) -> TreeEnsemble | None:
    """Gradient-boosted trees on soft labels, exported to plain nodes (None if one class)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

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
) -> LearnedRouter:
    """Fit a router on labelled outcomes (`strong`/`weak`: each model's score per prompt).

    `embeddings`: WordLlama prompt embeddings join the features. `domain`: the router keeps
    a summary of its training prompts in embedding space (the out-of-domain fallback).
    """
    if mode not in MODES:
        raise LearnedRouterError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if task_types is None:
        task_types = ["analysis"] * len(texts)
    vectors = get_embedder().embed_many(texts) if embeddings or domain else None
    matrix, names = feature_matrix(
        texts, task_types, weak_responses, mode=mode, embeddings=vectors if embeddings else None
    )
    return fit_router(
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
    )


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
) -> LearnedRouter:
    """Fit a router on rows already featurised (see :func:`feature_matrix`); `embedding`
    names the embedding behind any ``embedding_*`` columns and the `domain` summary."""
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
    )


def _embedding_from_dict(data: dict, source: str) -> EmbeddingInfo | None:
    """The artifact's embedding, refused unless the installed one has the same name and
    version (other weights or tokens would give other numbers, silently)."""
    recorded = data.get("embedding")
    if recorded is None:
        return None
    try:
        info = EmbeddingInfo(str(recorded["name"]), str(recorded["version"]), int(recorded["dim"]))
    except (KeyError, TypeError, ValueError) as err:
        raise LearnedRouterError(f"{source} is damaged (embedding: {err})") from None
    installed = installed_info()
    if (info.name, info.version) != (installed.name, installed.version):
        raise LearnedRouterError(
            f"{source} was trained with the embedding {info.name} {info.version}; this "
            f"platform has {installed.name} {installed.version}: install "
            f"wordllama=={info.version} or retrain the router with `manage.py routing "
            "train-router`"
        )
    return info


def router_from_dict(data: dict, *, source: str = "artifact") -> LearnedRouter:
    """Rebuild a router from its JSON form; refuses unknown formats and versions."""
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        raise LearnedRouterError(
            f"{source} is not a learned-router artifact (expected format {ARTIFACT_FORMAT!r}); "
            "create one with `manage.py routing train-router`"
        )
    version = data.get("version")
    if version not in READABLE_VERSIONS:
        raise LearnedRouterError(
            f"{source} is learned-router artifact version {version!r}; this platform reads "
            f"version {ARTIFACT_VERSION}: retrain it with `manage.py routing train-router`"
        )
    if data.get("feature_version") != FEATURE_VERSION:
        raise LearnedRouterError(
            f"{source} was trained on feature set {data.get('feature_version')!r}; this "
            f"platform computes feature set {FEATURE_VERSION}: retrain it"
        )
    embedding = _embedding_from_dict(data, source)
    try:
        features = data["features"]
        names = tuple(str(name) for name in features["names"])
        means = tuple(float(x) for x in features["means"])
        scales = tuple(float(x) for x in features["scales"])
        models = {
            key: LinearModel(
                float(data["models"][key]["intercept"]),
                tuple(float(x) for x in data["models"][key]["coefficients"]),
            )
            for key in ("strong_right", "weak_right")
        }
        boosted = data.get("boosted")
        trees = (
            None
            if boosted is None
            else {
                key: TreeEnsemble.from_dict(boosted[key], len(names))
                for key in ("strong_right", "weak_right")
            }
        )
        domain = data.get("domain")
        if domain is not None:
            if embedding is None:
                raise ValueError("a domain summary without its embedding")
            domain = DomainSummary.from_dict(domain, embedding.dim)
        mode = data["mode"]
        threshold = data.get("threshold")
        threshold = None if threshold is None else float(threshold)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise LearnedRouterError(f"{source} is damaged ({type(err).__name__}: {err})") from None
    if mode not in MODES:
        raise LearnedRouterError(f"{source}: unknown mode {mode!r}")
    sizes = {len(names), len(means), len(scales)} | {len(m.coefficients) for m in models.values()}
    if len(sizes) != 1 or any(scale <= 0 for scale in scales):
        raise LearnedRouterError(f"{source} is damaged (feature and weight counts disagree)")
    if embedding is None and any(name.startswith(EMBEDDING_PREFIX) for name in names):
        raise LearnedRouterError(f"{source} is damaged (embedding features, no embedding)")
    return LearnedRouter(
        mode=mode,
        feature_names=names,
        means=means,
        scales=scales,
        strong_model=models["strong_right"],
        weak_model=models["weak_right"],
        threshold=threshold,
        metadata=dict(data.get("metadata") or {}),
        strong_trees=None if trees is None else trees["strong_right"],
        weak_trees=None if trees is None else trees["weak_right"],
        embedding=embedding,
        domain=domain,
    )


def load_router(path: str | Path) -> LearnedRouter:
    """Load a learned-router artifact written by :meth:`LearnedRouter.save`."""
    path = Path(path)
    if not path.is_file():
        raise LearnedRouterError(
            f"{path}: no such learned-router file (train one with `manage.py routing train-router`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LearnedRouterError(f"{path} is not a learned-router artifact ({err})") from None
    return router_from_dict(data, source=str(path))
