"""Train a learned router with an honest report, and calibrate its threshold.

1. Out-of-fold scores (folds by MMLU subject / prompt hash) give the cross-validated
   APGR, CPT and savings the router can be expected to reach on prompts it never saw.
2. The same out-of-fold scores calibrate the threshold to the user's target: a share of
   strong-model calls, or a share of the strong model's quality (RouteLLM calibrates on
   public data; here it is the user's own rows, scored as if unseen). Or a separate file
   of the user's own prompts calibrates it (`--calibrate-on`): prompts alone are enough
   for a strong-share target, outcomes are needed for a quality target.
3. The final router is fitted on every row and carries the threshold and the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routing_platform.engine.learned import LearnedRouter
from routing_platform.engine.quality.crossval import DEFAULT_FOLDS, Progress
from routing_platform.engine.quality.dataset import RoutingDataset
from routing_platform.engine.quality.embedding import get_embedder, installed_info
from routing_platform.engine.quality.features import FEATURE_VERSION
from routing_platform.engine.quality.metrics import MetricsError, evaluate_scores
from routing_platform.engine.quality.routers import (
    artifact_scores,
    router_scores,
    training_matrix,
)
from routing_platform.engine.quality.training import (
    DEFAULT_REGULARIZATION,
    fit_router,
    summarise_domain,
    with_length_rule,
)

DEFAULT_TARGET_QUALITY = 0.95


@dataclass(frozen=True)
class TrainingResult:
    router: LearnedRouter
    out_of_fold_scores: np.ndarray | None
    summary: dict


def train_and_calibrate(
    dataset: RoutingDataset,
    *,
    strong: str,
    weak: str,
    mode: str = "route",
    n_folds: int = DEFAULT_FOLDS,
    regularization: float = DEFAULT_REGULARIZATION,
    target_strong_share: float | None = None,
    target_quality: float | None = None,
    calibration: RoutingDataset | None = None,
    embeddings: bool = False,
    domain: bool = True,
    progress: Progress | None = None,
) -> TrainingResult:
    """Cross-validate, fit on all rows, calibrate on the out-of-fold scores (or on the
    user's own `calibration` rows: prompts alone suffice for a strong-share target).

    `embeddings`: WordLlama prompt embeddings join the features. `domain`: the router keeps
    a summary of its training prompts, so the engine falls back on prompts unlike them.
    """
    dataset, skipped_rows = dataset.with_outcomes(strong, weak)
    if target_strong_share is None and target_quality is None:
        target_quality = DEFAULT_TARGET_QUALITY
    strong_outcome, weak_outcome = dataset.score(strong), dataset.score(weak)
    notes: list[str] = []
    if skipped_rows:
        notes.append(f"{skipped_rows} rows without a recorded score for both models were left out")
    out_of_fold: np.ndarray | None = None
    cross_validation: dict | None = None
    try:
        out_of_fold = router_scores(
            "learned",
            dataset,
            strong=strong,
            weak=weak,
            mode=mode,
            n_folds=n_folds,
            regularization=regularization,
            embeddings=embeddings,
            progress=progress,
        )
    except ValueError as err:
        notes.append(f"no cross-validation ({err}); threshold calibrated in-sample")
    if out_of_fold is not None:
        try:
            metrics = evaluate_scores(out_of_fold, strong_outcome, weak_outcome, mode=mode)
            cross_validation = {"folds": n_folds, **metrics.as_dict()}
        except MetricsError as err:
            notes.append(f"cross-validated metrics undefined: {err}")

    vectors = (
        get_embedder().embed_prompts(dataset.prompts, FEATURE_VERSION)
        if embeddings or domain
        else None
    )
    matrix, names = training_matrix(
        dataset, weak=weak, mode=mode, embeddings=vectors if embeddings else None
    )
    router = fit_router(
        matrix,
        names,
        strong_outcome,
        weak_outcome,
        mode=mode,
        regularization=regularization,
        metadata={
            "strong_model": strong,
            "weak_model": weak,
            "trained_on": list(dataset.sources),
            "cross_validation": cross_validation,
        },
        embedding=None if vectors is None else installed_info(),
        domain=summarise_domain(vectors) if domain and vectors is not None else None,
    )
    router = with_length_rule(
        router,
        dataset.prompts,
        out_of_fold if out_of_fold is not None else router.score_matrix(matrix),
    )
    if calibration is not None:
        # The user's own prompts, unseen in training: RouteLLM's calibration on their data.
        calibration_strong = calibration.scores.get(strong)
        calibration_weak = calibration.scores.get(weak)
        if target_quality is not None:
            if calibration_strong is None or calibration_weak is None:
                raise ValueError(
                    f"a quality target needs {strong!r} and {weak!r} score columns in the "
                    "calibration file; for a prompts-only file use --target-strong-share"
                )
            calibration, _ = calibration.with_outcomes(strong, weak)
            calibration_strong, calibration_weak = (
                calibration.score(strong),
                calibration.score(weak),
            )
        calibration_scores = artifact_scores(router, calibration, weak=weak)
        rows_from: list[str] | str = list(calibration.sources)
    else:
        calibration_scores = out_of_fold if out_of_fold is not None else router.score_matrix(matrix)
        calibration_strong, calibration_weak = strong_outcome, weak_outcome
        rows_from = (
            "out-of-fold scores of the training rows"
            if out_of_fold is not None
            else "in-sample scores of the training rows"
        )
    router = router.calibrated(
        calibration_scores,
        strong=calibration_strong,
        weak=calibration_weak,
        target_strong_share=target_strong_share,
        target_quality=target_quality,
    )
    router.metadata["calibration"]["rows_from"] = rows_from
    summary = {
        "rows": len(dataset),
        "strong": strong,
        "weak": weak,
        "mode": mode,
        "datasets": list(dataset.sources),
        "cross_validation": cross_validation,
        "calibration": router.metadata.get("calibration"),
        "threshold": router.threshold,
        "embedding_features": embeddings,
        "embedding": None if router.embedding is None else router.embedding.as_dict(),
        "domain_threshold": None if router.domain is None else router.domain.threshold,
        "notes": notes,
    }
    return TrainingResult(router=router, out_of_fold_scores=out_of_fold, summary=summary)
