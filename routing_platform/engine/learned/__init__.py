"""The learned router (contract 6): which prompts need the strong model, learned from outcomes.

Serving only: a trained router's numbers, and the scoring of prompts with them. Fitting
lives in :mod:`routing_platform.engine.quality.training` (scikit-learn is needed only
there). The modules, bottom up:

- ``features``: a prompt's feature row (text features, task type, the weak model's answer
  in ``cascade`` mode, the prompt embedding when the router reads one);
- ``model``: the fitted estimators as plain numbers (a logistic model, boosted trees);
- ``ood``: the training domain in embedding space (the out-of-domain fallback);
- ``calibration``: the threshold that reaches the user's target;
- ``serving``: :class:`LearnedRouter`, scoring one prompt (the engine) or many (backtests);
- ``artifact``: the JSON file (never unpickled; independent of the scikit-learn version).

Usage::

    router = load_router("router.json")
    router.strong_probability("What is 2 + 2?", "analysis")   # 0..1
    router.prefers_strong("What is 2 + 2?", "analysis")       # score >= calibrated threshold
"""

from routing_platform.engine.learned.artifact import (
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    READABLE_VERSIONS,
    load_router,
    router_from_dict,
    router_to_dict,
    save_router,
)
from routing_platform.engine.learned.calibration import calibrate_threshold
from routing_platform.engine.learned.errors import LearnedRouterError
from routing_platform.engine.learned.features import (
    CASCADE,
    EMBEDDING_PREFIX,
    MODES,
    ROUTE,
    feature_matrix,
    feature_row,
    task_type_for_eval,
)
from routing_platform.engine.learned.model import LinearModel, Tree, TreeEnsemble
from routing_platform.engine.learned.ood import (
    Assessment,
    DomainSummary,
    LengthRule,
    TrafficMonitor,
    traffic_shifted,
)
from routing_platform.engine.learned.serving import LearnedRouter

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "CASCADE",
    "EMBEDDING_PREFIX",
    "MODES",
    "READABLE_VERSIONS",
    "ROUTE",
    "Assessment",
    "DomainSummary",
    "LearnedRouter",
    "LearnedRouterError",
    "LengthRule",
    "LinearModel",
    "Tree",
    "TrafficMonitor",
    "TreeEnsemble",
    "calibrate_threshold",
    "feature_matrix",
    "feature_row",
    "load_router",
    "router_from_dict",
    "router_to_dict",
    "save_router",
    "task_type_for_eval",
    "traffic_shifted",
]
