"""The training domain in embedding space, and one prompt's assessment against it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
