"""The artifact: one JSON file with weights, tree nodes, feature scaling, the calibrated
threshold and metadata, under ``format`` and ``version``. Loading never unpickles anything
(so an artifact from elsewhere cannot run code) and does not depend on scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path

from routing_platform.engine.learned.errors import LearnedRouterError
from routing_platform.engine.learned.features import EMBEDDING_PREFIX, MODES
from routing_platform.engine.learned.model import LinearModel, TreeEnsemble
from routing_platform.engine.learned.ood import DomainSummary
from routing_platform.engine.learned.serving import LearnedRouter
from routing_platform.engine.quality.embedding import EmbeddingInfo, installed_info
from routing_platform.engine.quality.features import FEATURE_VERSIONS

ARTIFACT_FORMAT = "routing-platform/learned-router"
# 3: optional prompt embeddings (as features and/or the domain summary). 2 still loads.
ARTIFACT_VERSION = 3
READABLE_VERSIONS = (2, 3)


def router_to_dict(router: LearnedRouter) -> dict:
    """The router's JSON form (what :func:`router_from_dict` reads back)."""
    return {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "feature_version": router.feature_version,
        "mode": router.mode,
        "threshold": router.threshold,
        "features": {
            "names": list(router.feature_names),
            "means": list(router.means),
            "scales": list(router.scales),
        },
        "models": {
            "strong_right": {
                "intercept": router.strong_model.intercept,
                "coefficients": list(router.strong_model.coefficients),
            },
            "weak_right": {
                "intercept": router.weak_model.intercept,
                "coefficients": list(router.weak_model.coefficients),
            },
        },
        "boosted": (
            None
            if router.strong_trees is None or router.weak_trees is None
            else {
                "strong_right": router.strong_trees.to_dict(),
                "weak_right": router.weak_trees.to_dict(),
            }
        ),
        "embedding": None if router.embedding is None else router.embedding.as_dict(),
        "domain": None if router.domain is None else router.domain.to_dict(),
        "metadata": router.metadata,
    }


def save_router(router: LearnedRouter, path: str | Path) -> Path:
    """Write the router's artifact to `path` (read it back with :func:`load_router`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(router_to_dict(router), indent=1, sort_keys=False) + "\n")
    return path


def _embedding_from_dict(data: dict, source: str) -> EmbeddingInfo | None:
    """The artifact's embedding, refused unless the installed one has the same name and
    version (other weights or tokens would give other numbers, silently)."""
    recorded = data.get("embedding")
    if recorded is None:
        return None
    try:
        info = EmbeddingInfo(str(recorded["name"]), str(recorded["version"]), int(recorded["dim"]))
    except (KeyError, TypeError, ValueError) as err:
        raise LearnedRouterError(f"{source} is damaged (embedding: {err})") from None
    installed = installed_info()
    if (info.name, info.version) != (installed.name, installed.version):
        raise LearnedRouterError(
            f"{source} was trained with the embedding {info.name} {info.version}; this "
            f"platform has {installed.name} {installed.version}: install "
            f"wordllama=={info.version} or retrain the router with `manage.py routing "
            "train-router`"
        )
    return info


def router_from_dict(data: dict, *, source: str = "artifact") -> LearnedRouter:
    """Rebuild a router from its JSON form; refuses unknown formats and versions."""
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        raise LearnedRouterError(
            f"{source} is not a learned-router artifact (expected format {ARTIFACT_FORMAT!r}); "
            "create one with `manage.py routing train-router`"
        )
    version = data.get("version")
    if version not in READABLE_VERSIONS:
        raise LearnedRouterError(
            f"{source} is learned-router artifact version {version!r}; this platform reads "
            f"version {ARTIFACT_VERSION}: retrain it with `manage.py routing train-router`"
        )
    feature_version = data.get("feature_version")
    if feature_version not in FEATURE_VERSIONS:
        raise LearnedRouterError(
            f"{source} was trained on feature set {feature_version!r}; this platform computes "
            f"feature sets {', '.join(map(str, FEATURE_VERSIONS))}: retrain it with "
            "`manage.py routing train-router`"
        )
    embedding = _embedding_from_dict(data, source)
    try:
        features = data["features"]
        names = tuple(str(name) for name in features["names"])
        means = tuple(float(x) for x in features["means"])
        scales = tuple(float(x) for x in features["scales"])
        models = {
            key: LinearModel(
                float(data["models"][key]["intercept"]),
                tuple(float(x) for x in data["models"][key]["coefficients"]),
            )
            for key in ("strong_right", "weak_right")
        }
        boosted = data.get("boosted")
        trees = (
            None
            if boosted is None
            else {
                key: TreeEnsemble.from_dict(boosted[key], len(names))
                for key in ("strong_right", "weak_right")
            }
        )
        domain = data.get("domain")
        if domain is not None:
            if embedding is None:
                raise ValueError("a domain summary without its embedding")
            domain = DomainSummary.from_dict(domain, embedding.dim)
        mode = data["mode"]
        threshold = data.get("threshold")
        threshold = None if threshold is None else float(threshold)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise LearnedRouterError(f"{source} is damaged ({type(err).__name__}: {err})") from None
    if mode not in MODES:
        raise LearnedRouterError(f"{source}: unknown mode {mode!r}")
    sizes = {len(names), len(means), len(scales)} | {len(m.coefficients) for m in models.values()}
    if len(sizes) != 1 or any(scale <= 0 for scale in scales):
        raise LearnedRouterError(f"{source} is damaged (feature and weight counts disagree)")
    if embedding is None and any(name.startswith(EMBEDDING_PREFIX) for name in names):
        raise LearnedRouterError(f"{source} is damaged (embedding features, no embedding)")
    return LearnedRouter(
        mode=mode,
        feature_names=names,
        means=means,
        scales=scales,
        strong_model=models["strong_right"],
        weak_model=models["weak_right"],
        threshold=threshold,
        metadata=dict(data.get("metadata") or {}),
        strong_trees=None if trees is None else trees["strong_right"],
        weak_trees=None if trees is None else trees["weak_right"],
        embedding=embedding,
        domain=domain,
        feature_version=feature_version,
    )


def load_router(path: str | Path) -> LearnedRouter:
    """Load a learned-router artifact written by :func:`save_router`."""
    path = Path(path)
    if not path.is_file():
        raise LearnedRouterError(
            f"{path}: no such learned-router file (train one with `manage.py routing train-router`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LearnedRouterError(f"{path} is not a learned-router artifact ({err})") from None
    return router_from_dict(data, source=str(path))
