"""The fitted estimators as plain numbers: a logistic model and gradient-boosted trees,
and how their two probabilities make the routing score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearModel:
    """A logistic model over standardised features: sigmoid(intercept + w . x)."""

    intercept: float
    coefficients: tuple[float, ...]

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


def combine_scores(strong_right, weak_right):
    """The routing score from P(strong right) and P(weak right) (floats or arrays).

    0.5 + (P(strong right) - P(weak right)) / 2: 0.5 = no expected gain from the strong
    model, 1 = the strong model surely right and the weak surely wrong. Ranking by the
    expected gain gave the highest APGR in cross-validation (against P(weak wrong) and
    P(strong right) x P(weak wrong)).
    """
    return 0.5 + 0.5 * (strong_right - weak_right)


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


@dataclass(frozen=True)
class TreeStack:
    """Several ensembles' trees as flat node arrays, walked together for one row: a step
    moves every tree one level down at once (numpy), instead of a Python loop per tree.
    Leaves loop back to themselves, so `depth` steps reach every tree's leaf."""

    baselines: tuple[float, ...]
    bounds: tuple[int, ...]  # tree i of ensemble k: bounds[k] <= i < bounds[k + 1]
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int

    @classmethod
    def of(cls, ensembles: Sequence[TreeEnsemble]) -> TreeStack:
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        bounds = [0]
        depth = 0
        for ensemble in ensembles:
            for tree in ensemble.trees:
                offset = len(feature)
                roots.append(offset)
                levels = [0] * len(tree.feature)
                for node, split in enumerate(tree.feature):
                    leaf = split < 0
                    feature.append(0 if leaf else split)
                    threshold.append(math.inf if leaf else tree.threshold[node])
                    left.append(offset + (node if leaf else tree.left[node]))
                    right.append(offset + (node if leaf else tree.right[node]))
                    value.append(tree.value[node])
                    if not leaf:  # children come after their parent (checked on load)
                        levels[tree.left[node]] = levels[tree.right[node]] = levels[node] + 1
                depth = max(depth, *levels)
            bounds.append(len(roots))
        return cls(
            baselines=tuple(ensemble.baseline for ensemble in ensembles),
            bounds=tuple(bounds),
            roots=np.asarray(roots, dtype=np.intp),
            feature=np.asarray(feature, dtype=np.intp),
            threshold=np.asarray(threshold, dtype=float),
            left=np.asarray(left, dtype=np.intp),
            right=np.asarray(right, dtype=np.intp),
            value=np.asarray(value, dtype=float),
            depth=depth,
        )

    def logits(self, row: np.ndarray) -> list[float]:
        """Each ensemble's logit for one row of raw features (what `TreeEnsemble.logit` gives)."""
        nodes = self.roots
        for _ in range(self.depth):
            goes_left = row[self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(goes_left, self.left[nodes], self.right[nodes])
        outputs = self.value[nodes]
        return [
            baseline + float(outputs[start:end].sum())
            for baseline, start, end in zip(
                self.baselines, self.bounds[:-1], self.bounds[1:], strict=True
            )
        ]


@dataclass(frozen=True)
class RowScorer:
    """The serving path for one prompt: the strong and weak models' weights as one matrix
    (one product for both), and their trees as one :class:`TreeStack`."""

    means: np.ndarray
    scales: np.ndarray
    weights: np.ndarray  # (2, features): strong, weak
    intercepts: np.ndarray
    trees: TreeStack | None

    @classmethod
    def of(
        cls,
        means: Sequence[float],
        scales: Sequence[float],
        models: tuple[LinearModel, LinearModel],
        trees: tuple[TreeEnsemble, TreeEnsemble] | None,
    ) -> RowScorer:
        return cls(
            means=np.asarray(means, dtype=float),
            scales=np.asarray(scales, dtype=float),
            weights=np.asarray([model.coefficients for model in models], dtype=float),
            intercepts=np.asarray([model.intercept for model in models], dtype=float),
            trees=None if trees is None else TreeStack.of(trees),
        )

    def score(self, raw: np.ndarray) -> float:
        """The routing score of one row of raw features (float64, in feature order)."""
        standardised = (raw - self.means) / self.scales
        strong_logit, weak_logit = (self.weights @ standardised + self.intercepts).tolist()
        strong, weak = sigmoid(strong_logit), sigmoid(weak_logit)
        if self.trees is not None:
            strong_trees, weak_trees = self.trees.logits(raw)
            strong = (strong + sigmoid(strong_trees)) / 2
            weak = (weak + sigmoid(weak_trees)) / 2
        return float(combine_scores(strong, weak))
