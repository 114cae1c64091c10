"""A backtest: score every row with each router and summarise quality against cost.

`run_backtest` returns a JSON-serialisable report: for each router (the one asked for plus
the random and prompt-length baselines) APGR, CPT(50%), CPT(80%), and the strong share
and savings at 95% of the strong model's quality, overall and per evaluation set
(``mmlu``, ``gsm8k``, ...) when the rows mix several; plus its curve for plotting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from routing_platform.engine.learned import CASCADE, MODES, LearnedRouter
from routing_platform.engine.quality.crossval import DEFAULT_FOLDS, Progress
from routing_platform.engine.quality.dataset import (
    DatasetError,
    OutcomeScale,
    RoutingDataset,
    detect_scale,
)
from routing_platform.engine.quality.metrics import (
    STRONG_PRICE_USD_PER_MTOK,
    WEAK_PRICE_USD_PER_MTOK,
    MetricsError,
    QualityCurve,
    quality_curve,
    routing_metrics,
)
from routing_platform.engine.quality.routers import (
    BASELINES,
    artifact_scores_with_fallback,
    router_scores,
)
from routing_platform.engine.quality.training import DEFAULT_REGULARIZATION

REPORT_VERSION = 1
# The engine's own thresholds: complexity >= 0.65 is "complex" (premium tier); in cascade
# mode it escalates when confidence < 0.7, i.e. escalation score > 0.3.
HEURISTIC_ROUTE_THRESHOLD = 0.65
HEURISTIC_CASCADE_THRESHOLD = 0.3


@dataclass
class RouterResult:
    name: str
    kind: str  # "router" | "baseline" | "reference"
    scores: np.ndarray
    curve: QualityCurve
    metrics: dict
    by_eval: dict[str, dict] = field(default_factory=dict)
    operating_point: dict | None = None

    def as_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, **self.metrics}
        if self.by_eval:
            out["by_eval"] = self.by_eval
        if self.operating_point is not None:
            out["operating_point"] = self.operating_point
        return out


@dataclass
class BacktestReport:
    strong: str
    weak: str
    mode: str
    dataset: RoutingDataset
    results: list[RouterResult]
    cost_source: str
    n_folds: int
    skipped_rows: int = 0
    scale: OutcomeScale = field(default_factory=lambda: OutcomeScale(0.0, 1.0))
    fallback: dict | None = None

    def result(self, name: str) -> RouterResult:
        return next(result for result in self.results if result.name == name)

    def as_dict(self) -> dict:
        return {
            "report_version": REPORT_VERSION,
            "datasets": list(self.dataset.sources),
            "rows": len(self.dataset),
            "rows_skipped_without_outcome": self.skipped_rows,
            "eval_sets": sorted(set(eval_group(name) for name in self.dataset.eval_names)),
            "strong": self.strong,
            "weak": self.weak,
            "mode": self.mode,
            "cost": self.cost_source,
            "cross_validation": {
                "folds": self.n_folds,
                "grouping": "MMLU rows by subject; other rows by prompt hash",
                "applies_to": "the learned router (trained and scored out-of-fold)",
            },
            "scale": self.scale.as_dict(),
            "fallback": self.fallback,
            "routers": [result.as_dict() for result in self.results],
        }


def eval_group(eval_name: str) -> str:
    """`mmlu-anatomy` -> `mmlu`; `gsm8k` -> `gsm8k`."""
    return eval_name.split("-", 1)[0]


def _costs(dataset: RoutingDataset, strong: str, weak: str) -> tuple:
    if strong in dataset.costs_usd and weak in dataset.costs_usd:
        return dataset.costs_usd[strong], dataset.costs_usd[weak], "per-row `|total_cost` columns"
    return (
        None,
        None,
        f"RouteLLM prices: strong ${STRONG_PRICE_USD_PER_MTOK}/M tokens, weak "
        f"${WEAK_PRICE_USD_PER_MTOK}/M tokens, same tokens per call",
    )


def operating_point(
    scores: np.ndarray,
    threshold: float,
    strong_outcome: np.ndarray,
    weak_outcome: np.ndarray,
    *,
    mode: str,
    strong_cost: np.ndarray | None = None,
    weak_cost: np.ndarray | None = None,
) -> dict:
    """Quality, strong share and savings when rows with score >= threshold go strong."""
    chosen = scores >= threshold
    n = len(scores)
    strong_cost = (
        np.full(n, STRONG_PRICE_USD_PER_MTOK) if strong_cost is None else np.asarray(strong_cost)
    )
    weak_cost = np.full(n, WEAK_PRICE_USD_PER_MTOK) if weak_cost is None else np.asarray(weak_cost)
    quality = float(np.where(chosen, strong_outcome, weak_outcome).mean())
    if mode == CASCADE:
        cost = float((weak_cost + np.where(chosen, strong_cost, 0.0)).sum())
    else:
        cost = float(np.where(chosen, strong_cost, weak_cost).sum())
    return {
        "threshold": float(threshold),
        "strong_share": float(chosen.mean()),
        "quality": quality,
        "share_of_strong_quality": quality / float(np.mean(strong_outcome))
        if np.mean(strong_outcome)
        else None,
        "savings": 1.0 - cost / float(strong_cost.sum()),
    }


def _summarise(
    name: str,
    kind: str,
    scores: np.ndarray,
    dataset: RoutingDataset,
    *,
    strong: str,
    weak: str,
    mode: str,
    threshold: float | None,
) -> RouterResult:
    strong_outcome, weak_outcome = dataset.score(strong), dataset.score(weak)
    strong_cost, weak_cost, _ = _costs(dataset, strong, weak)
    curve = quality_curve(
        scores,
        strong_outcome,
        weak_outcome,
        mode=mode,
        strong_cost_usd=strong_cost,
        weak_cost_usd=weak_cost,
    )
    metrics = routing_metrics(curve).as_dict()
    groups = [eval_group(name) for name in dataset.eval_names]
    by_eval: dict[str, dict] = {}
    if len(set(groups)) > 1:
        group_array = np.array(groups)
        for group in sorted(set(groups)):
            rows = np.flatnonzero(group_array == group)
            try:
                by_eval[group] = routing_metrics(
                    quality_curve(
                        scores[rows],
                        strong_outcome[rows],
                        weak_outcome[rows],
                        mode=mode,
                        strong_cost_usd=None if strong_cost is None else strong_cost[rows],
                        weak_cost_usd=None if weak_cost is None else weak_cost[rows],
                    )
                ).as_dict()
            except MetricsError as err:
                by_eval[group] = {"error": str(err)}
    point = None
    if threshold is not None:
        point = operating_point(
            scores,
            threshold,
            strong_outcome,
            weak_outcome,
            mode=mode,
            strong_cost=strong_cost,
            weak_cost=weak_cost,
        )
    return RouterResult(name, kind, scores, curve, metrics, by_eval, point)


def _sub_progress(progress: Progress | None, done: int, steps: int, name: str):
    """Progress inside one router's run (e.g. its folds), reported as part of the whole."""
    if progress is None:
        return None

    def report(step: int, total: int, label: str) -> None:
        progress(done, steps, f"{name} {label}")

    return report


def run_backtest(
    dataset: RoutingDataset,
    *,
    strong: str,
    weak: str,
    routers: Sequence[str] = ("heuristic",),
    router_file: LearnedRouter | None = None,
    router_file_name: str = "router-file",
    mode: str = "route",
    baselines: Sequence[str] = BASELINES,
    n_folds: int = DEFAULT_FOLDS,
    regularization: float = DEFAULT_REGULARIZATION,
    seed: int = 0,
    scale: OutcomeScale | None = None,
    fallback: bool = True,
    embeddings: bool = False,
    progress: Progress | None = None,
) -> BacktestReport:
    """Score `dataset` with the routers and the baselines; see the module docstring.

    `scale`: the score columns' range (detected when None; scores outside it are refused).
    `fallback`: a router file's out-of-domain rows are scored as in serving (the
    prompt-length rule; see ``routers.artifact_scores_with_fallback``). `embeddings`: the cross-validated ``learned`` router reads embeddings too.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if strong == weak:
        raise DatasetError("--strong and --weak name the same model; name two different models")
    dataset, skipped_rows = dataset.with_outcomes(strong, weak)
    if scale is None:
        scale = detect_scale(dataset, strong, weak)
    scale.check(dataset, strong, weak)
    if router_file is not None and router_file.mode == CASCADE and mode != CASCADE:
        raise ValueError(
            "the router file was trained in cascade mode (it reads the weak model's answer): "
            "backtest it with --mode cascade"
        )
    plan: list[tuple[str, str]] = [(name, "router") for name in routers]
    plan += [(name, "baseline") for name in baselines if name not in routers]
    results: list[RouterResult] = []
    steps = len(plan) + (router_file is not None)
    done = 0
    fallback_summary = None
    if router_file is not None:
        scores, outside = artifact_scores_with_fallback(
            router_file, dataset, weak=weak, fallback=fallback
        )
        if router_file.domain is not None:
            fallback_summary = {
                "enabled": fallback,
                "rows": int(outside.sum()),
                "share": float(outside.mean()),
                "threshold": router_file.domain.threshold,
            }
        results.append(
            _summarise(
                router_file_name,
                "router",
                scores,
                dataset,
                strong=strong,
                weak=weak,
                mode=mode,
                threshold=router_file.threshold,
            )
        )
        done += 1
        if progress:
            progress(done, steps, router_file_name)
    for name, kind in plan:
        if name == "oracle":
            kind = "reference"
        scores = router_scores(
            name,
            dataset,
            strong=strong,
            weak=weak,
            mode=mode,
            seed=seed,
            n_folds=n_folds,
            regularization=regularization,
            embeddings=embeddings,
            progress=_sub_progress(progress, done, steps, name),
        )
        threshold = None
        if name == "heuristic":
            threshold = (
                HEURISTIC_CASCADE_THRESHOLD if mode == CASCADE else HEURISTIC_ROUTE_THRESHOLD
            )
        results.append(
            _summarise(
                name,
                kind,
                scores,
                dataset,
                strong=strong,
                weak=weak,
                mode=mode,
                threshold=threshold,
            )
        )
        done += 1
        if progress:
            progress(done, steps, name)
    _, _, cost_source = _costs(dataset, strong, weak)
    return BacktestReport(
        strong,
        weak,
        mode,
        dataset,
        results,
        cost_source,
        n_folds,
        skipped_rows=skipped_rows,
        scale=scale,
        fallback=fallback_summary,
    )
