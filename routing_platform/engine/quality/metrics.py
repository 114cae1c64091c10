"""Routing-quality metrics of the RouteLLM paper (arXiv 2406.18665), computed exactly.

A router gives each sample a score; the top share `c` by score goes to the strong model
and the rest to the weak one. Quality q(c) is the mean score of the chosen model.

- PGR(c) = (q(c) - q_weak) / (q_strong - q_weak): the share of the quality gap recovered.
- APGR = the area under PGR(c) for c in [0, 1] (random routing: 0.5).
- CPT(x) = the smallest strong share whose PGR reaches x (CPT(50%), CPT(80%)).
- Savings at 95% = the cost cut against always-strong at the smallest c whose quality
  reaches 95% of the strong model's, pricing calls at the paper's appendix D prices.

Ties in the score are broken at random in the paper; here the curve is the *expected*
curve under random tie-breaking (linear inside a group of tied scores), so a constant
score gives exactly APGR 0.5 and results never depend on a seed.

Cost: in ``route`` mode a row costs the chosen model's call; in ``cascade`` mode the weak
model answers every row first and escalated rows also pay the strong call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np

# RouteLLM paper, appendix D: GPT-4 and Mixtral 8x7B prices, USD per million tokens.
STRONG_PRICE_USD_PER_MTOK = 24.7
WEAK_PRICE_USD_PER_MTOK = 0.24
ROUTE = "route"
CASCADE = "cascade"
MODES = (ROUTE, CASCADE)


class MetricsError(ValueError):
    """Inputs for which the routing metrics are undefined (the message says why)."""


@dataclass(frozen=True)
class QualityCurve:
    """Quality and cost against the share of calls sent to the strong model (n + 1 points)."""

    strong_share: np.ndarray
    quality: np.ndarray
    relative_cost: np.ndarray
    weak_quality: float
    strong_quality: float
    mode: str

    @property
    def pgr(self) -> np.ndarray:
        return (self.quality - self.weak_quality) / (self.strong_quality - self.weak_quality)


@dataclass(frozen=True)
class RoutingMetrics:
    """The summary the backtest reports for one router."""

    apgr: float
    cpt50: float
    cpt80: float
    strong_share_at_95: float
    quality_at_95: float
    savings_at_95: float
    weak_quality: float
    strong_quality: float
    mode: str

    def as_dict(self) -> dict[str, float | str]:
        return {
            "apgr": self.apgr,
            "cpt50": self.cpt50,
            "cpt80": self.cpt80,
            "strong_share_at_95": self.strong_share_at_95,
            "quality_at_95": self.quality_at_95,
            "savings_at_95": self.savings_at_95,
            "weak_quality": self.weak_quality,
            "strong_quality": self.strong_quality,
            "mode": self.mode,
        }


def _expected_cumsum(sorted_values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """E[sum of the first k values] for k = 0..n when each tied group is in random order."""
    n = len(sorted_values)
    group_of_position = np.cumsum(group_start) - 1  # group index of each sorted position
    group_sums = np.bincount(group_of_position, weights=sorted_values)
    group_sizes = np.bincount(group_of_position)
    group_first = np.flatnonzero(group_start)
    before_group = np.concatenate(([0.0], np.cumsum(group_sums)[:-1]))
    k = np.arange(1, n + 1)
    taken_in_group = k - group_first[group_of_position]
    expected = before_group[group_of_position] + (
        taken_in_group / group_sizes[group_of_position] * group_sums[group_of_position]
    )
    return np.concatenate(([0.0], expected))


def quality_curve(
    scores: np.ndarray,
    strong: np.ndarray,
    weak: np.ndarray,
    *,
    mode: str = ROUTE,
    strong_cost_usd: np.ndarray | None = None,
    weak_cost_usd: np.ndarray | None = None,
) -> QualityCurve:
    """The expected quality/cost curve of routing the highest `scores` to the strong model.

    `strong`/`weak` are each model's per-row score (e.g. 1 = correct). Costs default to the
    paper's per-token prices with the same token count on every row.
    """
    if mode not in MODES:
        raise MetricsError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    scores = np.asarray(scores, dtype=float)
    strong = np.asarray(strong, dtype=float)
    weak = np.asarray(weak, dtype=float)
    n = len(scores)
    if n == 0:
        raise MetricsError("no rows to score")
    if strong.shape != (n,) or weak.shape != (n,):
        raise MetricsError(
            f"scores ({n}), strong ({strong.size}) and weak ({weak.size}) differ in length"
        )
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise MetricsError(f"router score of row {bad + 1} is not a finite number")
    strong_quality = float(strong.mean())
    weak_quality = float(weak.mean())
    if np.isclose(strong_quality, weak_quality, rtol=0, atol=1e-12):
        raise MetricsError(
            "the strong and weak models have the same mean quality on these rows "
            f"({strong_quality:.4f}): the quality gap, and so PGR, is undefined"
        )
    strong_cost = (
        np.full(n, STRONG_PRICE_USD_PER_MTOK)
        if strong_cost_usd is None
        else np.asarray(strong_cost_usd, dtype=float)
    )
    weak_cost = (
        np.full(n, WEAK_PRICE_USD_PER_MTOK)
        if weak_cost_usd is None
        else np.asarray(weak_cost_usd, dtype=float)
    )

    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    group_start = np.ones(n, dtype=bool)
    group_start[1:] = sorted_scores[1:] != sorted_scores[:-1]

    gain = _expected_cumsum((strong - weak)[order], group_start)
    quality = (weak.sum() + gain) / n
    if mode == ROUTE:
        extra_cost = _expected_cumsum((strong_cost - weak_cost)[order], group_start)
        cost = weak_cost.sum() + extra_cost
    else:
        extra_cost = _expected_cumsum(strong_cost[order], group_start)
        cost = weak_cost.sum() + extra_cost
    always_strong = strong_cost.sum()
    return QualityCurve(
        strong_share=np.arange(n + 1) / n,
        quality=quality,
        relative_cost=cost / always_strong,
        weak_quality=weak_quality,
        strong_quality=strong_quality,
        mode=mode,
    )


def apgr(curve: QualityCurve) -> float:
    """Area under PGR(c), c in [0, 1] (exact for the piecewise-linear expected curve)."""
    return float(np.trapezoid(curve.pgr, curve.strong_share))


def _first_crossing(values: np.ndarray, target: float, shares: np.ndarray) -> tuple[int, float]:
    """(index, interpolated share) where `values` first reaches `target`."""
    reached = np.flatnonzero(values >= target - 1e-12)
    if len(reached) == 0:
        return len(values) - 1, 1.0
    k = int(reached[0])
    if k == 0:
        return 0, 0.0
    low, high = values[k - 1], values[k]
    fraction = (target - low) / (high - low) if high != low else 1.0
    return k, float(shares[k - 1] + fraction * (shares[k] - shares[k - 1]))


def call_performance_threshold(curve: QualityCurve, pgr_target: float) -> float:
    """CPT(x): the smallest share of strong calls whose PGR reaches `pgr_target`."""
    if not 0 <= pgr_target <= 1:
        raise MetricsError(f"a PGR target is a share in [0, 1], not {pgr_target}")
    _, share = _first_crossing(curve.pgr, pgr_target, curve.strong_share)
    return share


def savings_at_quality(curve: QualityCurve, share_of_strong_quality: float = 0.95) -> dict:
    """Strong share, quality and cost cut at the first c reaching that share of q_strong."""
    target = share_of_strong_quality * curve.strong_quality
    k, share = _first_crossing(curve.quality, target, curve.strong_share)
    if k == 0:
        cost = float(curve.relative_cost[0])
        quality = float(curve.quality[0])
    else:
        span = curve.strong_share[k] - curve.strong_share[k - 1]
        fraction = (share - curve.strong_share[k - 1]) / span
        cost = float(
            curve.relative_cost[k - 1]
            + fraction * (curve.relative_cost[k] - curve.relative_cost[k - 1])
        )
        quality = float(curve.quality[k - 1] + fraction * (curve.quality[k] - curve.quality[k - 1]))
    return {"strong_share": share, "quality": quality, "savings": 1.0 - cost}


def routing_metrics(curve: QualityCurve) -> RoutingMetrics:
    """APGR, CPT(50%), CPT(80%), and the strong share and savings at 95% strong quality."""
    at_95 = savings_at_quality(curve, 0.95)
    return RoutingMetrics(
        apgr=apgr(curve),
        cpt50=call_performance_threshold(curve, 0.5),
        cpt80=call_performance_threshold(curve, 0.8),
        strong_share_at_95=at_95["strong_share"],
        quality_at_95=at_95["quality"],
        savings_at_95=at_95["savings"],
        weak_quality=curve.weak_quality,
        strong_quality=curve.strong_quality,
        mode=curve.mode,
    )


class CurveOptions(TypedDict, total=False):
    """The keyword options of `quality_curve` (and so of `evaluate_scores`)."""

    mode: str
    strong_cost_usd: np.ndarray | None
    weak_cost_usd: np.ndarray | None


def evaluate_scores(
    scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, **options: Unpack[CurveOptions]
) -> RoutingMetrics:
    """Shortcut: the metrics of one router's scores (`quality_curve`'s options)."""
    return routing_metrics(quality_curve(scores, strong, weak, **options))
