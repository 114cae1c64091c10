"""The score threshold that reaches the user's target, measured on their own rows."""

from __future__ import annotations

import math

import numpy as np

from routing_platform.engine.learned.errors import LearnedRouterError


def calibrate_threshold(
    scores: np.ndarray,
    *,
    strong: np.ndarray | None = None,
    weak: np.ndarray | None = None,
    target_strong_share: float | None = None,
    target_quality: float | None = None,
) -> tuple[float, dict]:
    """The score threshold that reaches a target, measured on the user's own rows.

    - `target_strong_share` (0-1): send about that share of calls to the strong model
      (RouteLLM's calibration: the (1 - share) quantile of the scores).
    - `target_quality` (0-1, a share of the strong model's quality, e.g. 0.95): the highest
      threshold whose routing reaches that share of always-strong quality on these rows
      (needs the rows' `strong` and `weak` outcomes).
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        raise LearnedRouterError("no rows to calibrate on")
    if (target_strong_share is None) == (target_quality is None):
        raise LearnedRouterError("give exactly one of target_strong_share or target_quality")
    ordered = np.sort(scores)[::-1]
    if target_strong_share is not None:
        if not 0 <= target_strong_share <= 1:
            raise LearnedRouterError(
                f"target strong share must be in [0, 1], not {target_strong_share}"
            )
        count = round(target_strong_share * len(scores))
        threshold = math.inf if count == 0 else float(ordered[count - 1])
        achieved = float(np.mean(scores >= threshold))
        return threshold, {
            "target": "strong_share",
            "target_value": target_strong_share,
            "threshold": threshold,
            "strong_share": achieved,
            "rows": len(scores),
        }
    if strong is None or weak is None:
        raise LearnedRouterError("a quality target needs the rows' strong and weak outcomes")
    if not 0 < target_quality <= 1.5:
        raise LearnedRouterError(
            f"target quality is a share of the strong model's quality (e.g. 0.95), "
            f"not {target_quality}"
        )
    strong = np.asarray(strong, dtype=float)
    weak = np.asarray(weak, dtype=float)
    goal = target_quality * float(strong.mean())
    # Walk thresholds from the highest score down; take the first that reaches the goal.
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    gains = np.cumsum((strong - weak)[order])
    quality = (weak.sum() + gains) / len(scores)
    last_of_tie = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    threshold = math.inf
    reached_quality = float(weak.mean())
    share = 0.0
    if reached_quality < goal:
        for index in last_of_tie:
            if quality[index] >= goal - 1e-12:
                threshold = float(sorted_scores[index])
                reached_quality = float(quality[index])
                share = (index + 1) / len(scores)
                break
        else:
            threshold = float(sorted_scores[-1])
            reached_quality = float(quality[-1])
            share = 1.0
    return threshold, {
        "target": "quality",
        "target_value": target_quality,
        "threshold": threshold,
        "quality": reached_quality,
        "strong_quality": float(strong.mean()),
        "strong_share": share,
        "rows": len(scores),
    }
