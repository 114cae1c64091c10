"""Routing quality on real recorded outcomes: load RouterBench-style CSVs, score routers,
compute RouteLLM's metrics (APGR, CPT, savings at 95% quality), cross-validate honestly,
and plot quality against cost. Pure Python (numpy; scikit-learn only to train)."""

from routing_platform.engine.quality.dataset import (
    DatasetError,
    RoutingDataset,
    load_dataset,
    load_datasets,
)
from routing_platform.engine.quality.metrics import (
    MetricsError,
    QualityCurve,
    RoutingMetrics,
    apgr,
    call_performance_threshold,
    evaluate_scores,
    quality_curve,
    routing_metrics,
    savings_at_quality,
)

__all__ = [
    "DatasetError",
    "MetricsError",
    "QualityCurve",
    "RoutingDataset",
    "RoutingMetrics",
    "apgr",
    "call_performance_threshold",
    "evaluate_scores",
    "load_dataset",
    "load_datasets",
    "quality_curve",
    "routing_metrics",
    "savings_at_quality",
]
