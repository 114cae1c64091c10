"""Honest evaluation: folds that never score a router on rows (or subjects) it trained on.

- MMLU-style rows (``eval_name`` ``mmlu-<subject>``) are grouped by subject, and whole
  subjects are dealt to folds (largest first, each to the lightest fold), so a router is
  always judged on subjects it never saw: what it learned must transfer across topics.
- Every other row is assigned by a hash of its prompt, so repeated prompts share a fold.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable

import numpy as np

from routing_platform.engine.quality.dataset import RoutingDataset

DEFAULT_FOLDS = 5
Progress = Callable[[int, int, str], None]


def subject_of(eval_name: str) -> str | None:
    """The MMLU subject of an eval name, or None when rows are not grouped by subject."""
    if eval_name.startswith("mmlu-"):
        return eval_name
    return None


def prompt_fold(prompt: str, n_folds: int) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:12], 16) % n_folds


def fold_ids(dataset: RoutingDataset, n_folds: int = DEFAULT_FOLDS) -> np.ndarray:
    """The fold (0..n_folds-1) of every row."""
    if n_folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {n_folds}")
    subjects = [subject_of(name) for name in dataset.eval_names]
    sizes = Counter(subject for subject in subjects if subject is not None)
    if sizes and len(sizes) < n_folds:
        raise ValueError(
            f"{len(sizes)} subjects cannot fill {n_folds} subject folds; use at most "
            f"{len(sizes)} folds"
        )
    load = [0] * n_folds
    fold_of_subject: dict[str, int] = {}
    for subject, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        lightest = min(range(n_folds), key=lambda fold: (load[fold], fold))
        fold_of_subject[subject] = lightest
        load[lightest] += size
    return np.array(
        [
            fold_of_subject[subject] if subject is not None else prompt_fold(prompt, n_folds)
            for subject, prompt in zip(subjects, dataset.prompts, strict=True)
        ],
        dtype=int,
    )


def cross_validated_scores(
    dataset: RoutingDataset,
    fit_and_score: Callable[[RoutingDataset, RoutingDataset], np.ndarray],
    *,
    n_folds: int = DEFAULT_FOLDS,
    progress: Progress | None = None,
) -> np.ndarray:
    """Out-of-fold scores: for each fold, fit on the other folds and score this one."""
    folds = fold_ids(dataset, n_folds)
    scores = np.zeros(len(dataset))
    for fold in range(n_folds):
        test = np.flatnonzero(folds == fold)
        train = np.flatnonzero(folds != fold)
        if len(test) == 0:
            continue
        scores[test] = fit_and_score(dataset.subset(train), dataset.subset(test))
        if progress is not None:
            progress(fold + 1, n_folds, f"fold {fold + 1}/{n_folds}")
    return scores
