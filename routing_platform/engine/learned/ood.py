"""The training domain in embedding space, one prompt's assessment against it, and what a
prompt outside it is routed by.

- A prompt beyond the domain threshold is routed by the prompt-length rule (longer prompts
  to the strong model), the floor that a router must not fall below on another domain.
  :class:`LengthRule` puts a prompt's length on the learned score's scale (the training
  prompts' length quantiles mapped to their score quantiles), so the calibrated threshold
  sends about the same share of fallen-back prompts to the strong model.
- When most of the recent traffic lies beyond the threshold (:class:`TrafficMonitor`), the
  traffic as a whole is another domain: every prompt is routed by the length rule, also
  the few that happen to lie near a training centroid (on another domain, the learned
  score of those is no better than chance; see docs/decisions/0019-ood-length-fallback.md).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

# Traffic counts as another domain when at least this share of the last TRAFFIC_WINDOW
# prompts lies beyond the threshold (held-out prompts of the training domain: ~10%; the
# other development file: 67-88%), once TRAFFIC_MINIMUM prompts were seen.
TRAFFIC_SHIFT_SHARE = 0.5
TRAFFIC_WINDOW = 200
TRAFFIC_MINIMUM = 50
LENGTH_RULE_POINTS = 101  # quantiles kept of the training prompts' lengths and scores


@dataclass(frozen=True)
class LengthRule:
    """The prompt-length rule on the learned score's scale: a prompt as long as the q-th
    quantile of the training prompts gets the q-th quantile of their scores."""

    lengths: tuple[float, ...]
    scores: tuple[float, ...]

    @classmethod
    def fit(cls, lengths: np.ndarray, scores: np.ndarray) -> LengthRule:
        levels = np.linspace(0, 1, LENGTH_RULE_POINTS)
        return cls(
            tuple(float(x) for x in np.quantile(np.asarray(lengths, dtype=float), levels)),
            tuple(round(float(x), 9) for x in np.quantile(np.asarray(scores, dtype=float), levels)),
        )

    def score(self, length: int) -> float:
        return float(np.interp(length, self.lengths, self.scores))

    def scores_of(self, texts) -> np.ndarray:
        lengths = np.array([len(text) for text in texts], dtype=float)
        return np.interp(lengths, self.lengths, self.scores)

    def to_dict(self) -> dict:
        return {"lengths": list(self.lengths), "scores": list(self.scores)}

    @classmethod
    def from_dict(cls, data: dict) -> LengthRule:
        lengths = tuple(float(x) for x in data["lengths"])
        scores = tuple(float(x) for x in data["scores"])
        if len(lengths) != len(scores) or len(lengths) < 2 or list(lengths) != sorted(lengths):
            raise ValueError("length rule: lengths and scores of different sizes or unsorted")
        return cls(lengths, scores)


def traffic_shifted(outside: np.ndarray) -> bool:
    """True when a batch of prompts (e.g. a whole evaluation file) is another domain."""
    return len(outside) >= TRAFFIC_MINIMUM and float(np.mean(outside)) >= TRAFFIC_SHIFT_SHARE


class TrafficMonitor:
    """The share of the last `window` served prompts that lay beyond the threshold."""

    def __init__(self, window: int = TRAFFIC_WINDOW) -> None:
        self._flags: deque[bool] = deque(maxlen=window)
        self._outside = 0
        self._lock = threading.Lock()

    def record(self, outside: bool) -> float | None:
        """Add one prompt's verdict; the share outside (None before TRAFFIC_MINIMUM)."""
        with self._lock:
            if len(self._flags) == self._flags.maxlen:
                self._outside -= self._flags[0]
            self._flags.append(outside)
            self._outside += outside
            count = len(self._flags)
            return self._outside / count if count >= TRAFFIC_MINIMUM else None


@dataclass(frozen=True)
class DomainSummary:
    """Where the training prompts lie in embedding space: unit-length k-means centroids, and
    the distance (1 - cosine similarity to the nearest centroid) that `quantile` of the
    training prompts stay within. A prompt farther out is unlike anything trained on."""

    centroids: np.ndarray
    threshold: float
    quantile: float
    # What routes a prompt outside (None in artifacts from before it: the engine classifier).
    length_rule: LengthRule | None = None

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        similarity = np.asarray(embeddings, dtype=np.float32) @ self.centroids.T
        return 1.0 - similarity.max(axis=1)

    def distance(self, embedding: np.ndarray) -> float:
        return float(1.0 - (self.centroids @ embedding).max())

    def with_length_rule(self, lengths: np.ndarray, scores: np.ndarray) -> DomainSummary:
        return replace(self, length_rule=LengthRule.fit(lengths, scores))

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "quantile": self.quantile,
            "centroids": [[round(float(x), 6) for x in row] for row in self.centroids],
            "length_rule": None if self.length_rule is None else self.length_rule.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict, dim: int) -> DomainSummary:
        centroids = np.asarray(data["centroids"], dtype=np.float32)
        if centroids.ndim != 2 or centroids.shape[1] != dim or len(centroids) == 0:
            raise ValueError(f"domain centroids are not k x {dim}")
        rule = data.get("length_rule")
        return cls(
            centroids,
            float(data["threshold"]),
            float(data["quantile"]),
            None if rule is None else LengthRule.from_dict(rule),
        )


@dataclass(frozen=True)
class Assessment:
    """One prompt judged by a learned router: its score, and whether it is in its domain."""

    score: float
    in_domain: bool = True
    distance: float | None = None
    threshold: float | None = None
    # Outside the domain: the prompt-length rule's score (None: no rule in the artifact).
    fallback_score: float | None = None
    # The share of recent prompts beyond the threshold, when it makes the traffic another
    # domain (then this prompt falls back even if it lies within the threshold).
    traffic_outside: float | None = None

    @property
    def reason(self) -> str:
        if self.distance is None:
            return "no domain summary in the router"
        relation = "beyond" if self.distance > self.threshold else "within"
        reason = (
            f"distance to the training prompts {self.distance:.3f} {relation} the "
            f"threshold {self.threshold:.3f}"
        )
        if self.traffic_outside is not None:
            reason += (
                f"; {100 * self.traffic_outside:.0f}% of recent prompts beyond it "
                "(traffic of another domain)"
            )
        if not self.in_domain and self.fallback_score is not None:
            reason += "; routed by prompt length"
        return reason
