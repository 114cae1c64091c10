"""A trained router scoring prompts: many at once (backtests) or one (the engine)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter

import numpy as np

from routing_platform.engine.learned.calibration import calibrate_threshold
from routing_platform.engine.learned.errors import LearnedRouterError
from routing_platform.engine.learned.features import (
    CASCADE,
    EMBEDDING_PREFIX,
    feature_matrix,
    feature_row,
)
from routing_platform.engine.learned.model import (
    LinearModel,
    RowScorer,
    TreeEnsemble,
    combine_scores,
)
from routing_platform.engine.learned.ood import (
    TRAFFIC_SHIFT_SHARE,
    Assessment,
    DomainSummary,
    TrafficMonitor,
)
from routing_platform.engine.quality.embedding import EmbeddingInfo, embedding_input, get_embedder
from routing_platform.engine.quality.features import FEATURE_VERSION


def _values_of(names: tuple[str, ...]) -> Callable[[dict], tuple[float, ...]]:
    """A function giving a row's values of `names`, in order (one C call: itemgetter)."""
    if len(names) == 1:
        return lambda row: (row[names[0]],)
    return itemgetter(*names) if names else lambda row: ()


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
    # The prompt feature set it was trained on (see engine/quality/features.py).
    feature_version: int = FEATURE_VERSION
    # The one-prompt serving path, built once: the weights as arrays (see RowScorer), and
    # the names of the feature row's columns (the embedding's columns come after them).
    _scorer: RowScorer = field(init=False, repr=False, compare=False)
    _row_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _row_values: Callable[[dict], tuple[float, ...]] = field(init=False, repr=False, compare=False)
    # The share of recent served prompts beyond the domain threshold (see ood.py).
    _traffic: TrafficMonitor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        trees = None
        if self.strong_trees is not None and self.weak_trees is not None:
            trees = (self.strong_trees, self.weak_trees)
        scorer = RowScorer.of(self.means, self.scales, (self.strong_model, self.weak_model), trees)
        names = tuple(name for name in self.feature_names if not name.startswith(EMBEDDING_PREFIX))
        object.__setattr__(self, "_scorer", scorer)
        object.__setattr__(self, "_row_names", names)
        object.__setattr__(self, "_row_values", _values_of(names))
        object.__setattr__(self, "_traffic", TrafficMonitor())

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
        return get_embedder().embed_prompts(texts, self.feature_version)

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
            feature_version=self.feature_version,
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
        return combine_scores(strong, weak)

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
        vector = None
        if self.embedding is not None:
            vector = get_embedder().embed(embedding_input(text, self.feature_version))
        score = self._score_one(text, task_type, weak_response, vector)
        if self.domain is None or vector is None:
            return Assessment(score)
        distance = self.domain.distance(vector)
        outside = distance > self.domain.threshold
        share = self._traffic.record(outside)
        shifted = share is not None and share >= TRAFFIC_SHIFT_SHARE
        in_domain = not (outside or shifted)
        rule = self.domain.length_rule
        return Assessment(
            score,
            in_domain,
            distance,
            self.domain.threshold,
            fallback_score=None if in_domain or rule is None else rule.score(len(text)),
            traffic_outside=share if shifted else None,
        )

    def _score_one(
        self, text: str, task_type: str, weak_response: str | None, vector: np.ndarray | None
    ) -> float:
        row = feature_row(
            text, task_type, weak_response, mode=self.mode, feature_version=self.feature_version
        )
        if self.mode == CASCADE and weak_response is None:
            # No answer yet (the engine deciding before any call): the answer features stay
            # at their training average, so they add nothing and the prompt alone decides.
            row = {name: value for name, value in row.items() if not name.startswith("answer_")}
        raw = np.empty(len(self.feature_names))
        try:
            raw[: len(self._row_names)] = self._row_values(row)
        except KeyError:  # a column the row lacks (answer features) stays at its mean
            raw[: len(self._row_names)] = [
                row.get(name, mean) for name, mean in zip(self._row_names, self.means, strict=False)
            ]
        if self.uses_embedding_features:
            raw[len(self._row_names) :] = (
                self.means[len(self._row_names) :] if vector is None else vector
            )
        return self._scorer.score(raw)

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
