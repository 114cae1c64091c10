"""A prompt's feature row: the text features, its task type and (cascade mode) the weak
model's answer, plus its prompt embedding as the last columns when the router reads them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routing_platform.engine.classifier import TASK_TYPES
from routing_platform.engine.learned.errors import LearnedRouterError
from routing_platform.engine.quality.features import (
    FEATURE_VERSION,
    answer_features,
    prompt_features,
)

ROUTE = "route"
CASCADE = "cascade"
MODES = (ROUTE, CASCADE)
EMBEDDING_PREFIX = "embedding_"
# A task type's one-hot columns (an unknown type counts as "analysis").
_TASK_COLUMNS = {
    known: {f"task_{name}": 1.0 if name == known else 0.0 for name in TASK_TYPES}
    for known in TASK_TYPES
}


def task_type_for_eval(eval_name: str) -> str:
    """The engine task type that an evaluation set's prompts stand for."""
    name = eval_name.lower()
    if name.startswith(("gsm8k", "math", "mgsm")):
        return "reasoning"
    if name.startswith(("humaneval", "mbpp", "code")):
        return "code"
    return "analysis"


def feature_row(
    text: str,
    task_type: str,
    weak_response: str | None,
    *,
    mode: str,
    feature_version: int = FEATURE_VERSION,
) -> dict[str, float]:
    row = prompt_features(text, feature_version)
    row.update(_TASK_COLUMNS.get(task_type) or _TASK_COLUMNS["analysis"])
    if mode == CASCADE:
        row.update(answer_features(weak_response))
    return row


def feature_matrix(
    texts: Sequence[str],
    task_types: Sequence[str],
    weak_responses: Sequence[str | None] | None,
    *,
    mode: str,
    feature_names: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
    feature_version: int = FEATURE_VERSION,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows of features (and their names) for many prompts, in feature set `feature_version`.

    `embeddings` (one row per prompt) become the last columns, ``embedding_0`` onwards.
    """
    if mode == CASCADE and weak_responses is None:
        raise LearnedRouterError(
            "cascade mode reads the weak model's answers: the dataset needs a "
            "`<weak model>|model_response` column"
        )
    rows = [
        feature_row(
            text,
            task_type,
            None if weak_responses is None else weak_responses[index],
            mode=mode,
            feature_version=feature_version,
        )
        for index, (text, task_type) in enumerate(zip(texts, task_types, strict=True))
    ]
    if feature_names is not None:
        names = tuple(name for name in feature_names if not name.startswith(EMBEDDING_PREFIX))
    else:
        names = tuple(rows[0]) if rows else ()
    matrix = np.array([[row.get(name, 0.0) for name in names] for row in rows], dtype=float)
    matrix = matrix.reshape(len(rows), len(names))
    if embeddings is None:
        return matrix, names
    embeddings = np.asarray(embeddings, dtype=float).reshape(len(rows), -1)
    embedding_names = tuple(f"{EMBEDDING_PREFIX}{i}" for i in range(embeddings.shape[1]))
    return np.hstack([matrix, embeddings]), names + embedding_names
