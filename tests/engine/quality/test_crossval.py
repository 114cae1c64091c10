"""Folds never mix a subject (or a repeated prompt) between training and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from routing_platform.engine.quality.crossval import cross_validated_scores, fold_ids
from routing_platform.engine.quality.dataset import load_dataset


def test_each_mmlu_subject_sits_in_exactly_one_fold(synthetic_csv):
    """Subjects are dealt whole to folds; GSM8K-like rows are spread by prompt hash."""
    dataset = load_dataset(synthetic_csv)
    folds = fold_ids(dataset, 5)
    names = np.array(dataset.eval_names)
    for subject in {name for name in names if name.startswith("mmlu-")}:
        assert len(set(folds[names == subject])) == 1
    assert len(set(folds[names == "gsm8k"])) > 1
    np.testing.assert_array_equal(folds, fold_ids(dataset, 5))  # deterministic


def test_out_of_fold_scoring_never_sees_the_test_rows(synthetic_csv):
    """The scorer's training rows and test rows are disjoint, and every row is scored."""
    dataset = load_dataset(synthetic_csv)
    seen: list[tuple[set, set]] = []

    def fit_and_score(train, test):
        seen.append((set(train.sample_ids), set(test.sample_ids)))
        return np.ones(len(test))

    scores = cross_validated_scores(dataset, fit_and_score, n_folds=5)
    assert np.all(scores == 1)
    for train_ids, test_ids in seen:
        assert not train_ids & test_ids
    assert set().union(*(test for _, test in seen)) == set(dataset.sample_ids)


def test_too_few_subjects_for_the_folds(synthetic_csv):
    """Five subjects cannot fill six subject folds: a clear error."""
    dataset = load_dataset(synthetic_csv)
    with pytest.raises(ValueError, match="at most 5 folds"):
        fold_ids(dataset, 6)
    with pytest.raises(ValueError, match="at least 2"):
        fold_ids(dataset, 1)


def test_real_mmlu_folds_hold_out_whole_subjects(routellm_dir):
    """On the shared MMLU file, no subject is split and folds are of similar size."""
    mmlu = load_dataset(routellm_dir / "mmlu_dev.csv")
    folds = fold_ids(mmlu, 5)
    names = np.array(mmlu.eval_names)
    assert all(len(set(folds[names == subject])) == 1 for subject in set(names))
    sizes = np.bincount(folds)
    assert sizes.min() > 0.8 * sizes.max()
