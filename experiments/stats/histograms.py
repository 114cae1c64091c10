"""Fixed-bucket histograms of latency and confidence, and quantiles estimated from them.

The bucket edges are constants so that histograms stored per rollup row (a JSON list of
counts, one count per bucket, always ``len(EDGES)`` long) can be summed across rows, hours,
arms or models, and quantiles such as p50 / p95 estimated from the sum.

Bucket ``i`` holds values ``v`` with ``EDGES[i] <= v < EDGES[i + 1]``; the last bucket is
open above (``v >= EDGES[-1]``); values below ``EDGES[0]`` go into bucket 0.

Latency buckets are log-spaced, 20 per decade (each bucket is 12.2% wide, so a quantile
interpolated inside a bucket is within about +-6% of the truth, much closer for smooth
distributions), from 1 ms to 1,000 s, with ``[0, 1 ms)`` as bucket 0.
Confidence buckets are 0.02 wide on [0, 1].
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

from experiments.stats.errors import StatsInputError

#: Latency buckets per decade (log-spaced).
LATENCY_HIST_PER_DECADE = 20
#: Latency bucket lower edges in milliseconds: 0, then 10 ** (k / 20) for k = 0..120.
LATENCY_HIST_EDGES_MS: tuple[float, ...] = (0.0,) + tuple(
    10 ** (k / LATENCY_HIST_PER_DECADE) for k in range(121)
)
#: Confidence bucket lower edges: 0.00, 0.02, ..., 0.98 (the last bucket includes 1.0).
CONFIDENCE_HIST_EDGES: tuple[float, ...] = tuple(round(k * 0.02, 2) for k in range(50))

LATENCY_HIST_SIZE = len(LATENCY_HIST_EDGES_MS)
CONFIDENCE_HIST_SIZE = len(CONFIDENCE_HIST_EDGES)
#: Upper end used when interpolating inside the last (open) bucket.
LATENCY_HIST_TOP_MS = 10 ** (121 / 20)
CONFIDENCE_HIST_TOP = 1.0


def bucket_index(value: float, edges: Sequence[float]) -> int:
    """The index of the bucket holding ``value``: the largest ``i`` with ``edges[i] <= value``
    (0 for values below the first edge)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise StatsInputError("a histogram value must be a number, not None/NaN")
    return max(bisect.bisect_right(edges, value) - 1, 0)


def latency_bucket(latency_ms: float) -> int:
    """Latency bucket index of one call: 0 below 1 ms, else
    ``min(floor(20 * log10(latency_ms) + 1e-9) + 1, 121)``.

    The closed formula (not a search over the edges) is what the SQL of
    ``rollups_rebuild`` computes too, so both paths put a value in the same bucket; the
    epsilon absorbs the last-bit differences between log10 implementations (SQLite's
    log10(1000) is 2.9999999999999996) so exact edges such as 1000 ms land alike.
    """
    if latency_ms is None or math.isnan(latency_ms):
        raise StatsInputError("latency must be a number, not None/NaN")
    if latency_ms < 1.0:
        return 0
    return min(
        int(math.floor(LATENCY_HIST_PER_DECADE * math.log10(latency_ms) + 1e-9)) + 1,
        LATENCY_HIST_SIZE - 1,
    )


def confidence_bucket(confidence: float) -> int:
    """Confidence bucket index of one call: ``min(floor(confidence * 50 + 1e-9), 49)``
    (the epsilon keeps 0.58 in bucket 29 despite binary floating point)."""
    if confidence is None or math.isnan(confidence):
        raise StatsInputError("confidence must be a number, not None/NaN")
    return min(max(int(math.floor(confidence * 50 + 1e-9)), 0), CONFIDENCE_HIST_SIZE - 1)


def empty_latency_hist() -> list[int]:
    return [0] * LATENCY_HIST_SIZE


def empty_confidence_hist() -> list[int]:
    return [0] * CONFIDENCE_HIST_SIZE


def hist_add(hist: Sequence[int] | None, index: int, size: int) -> list[int]:
    """A copy of ``hist`` (padded to ``size``) with one more count in bucket ``index``."""
    counts = list(hist or [])
    if len(counts) < size:
        counts.extend([0] * (size - len(counts)))
    counts[index] += 1
    return counts


def hist_sum(hists: Iterable[Sequence[int] | None], size: int) -> list[int]:
    """Bucket-wise sum of histograms (shorter or missing ones count as zeros)."""
    total = [0] * size
    for hist in hists:
        for index, count in enumerate(hist or []):
            total[index] += int(count)
    return total


def hist_quantile(
    counts: Sequence[int], edges: Sequence[float], q: float, *, top: float
) -> float | None:
    """Quantile ``q`` (0-1) estimated from bucket counts, interpolating linearly inside the
    bucket where the cumulative count reaches ``q * n``. None when the histogram is empty.

    With ``n = sum(counts)``, rank ``r = q * n`` and ``C_i`` the cumulative count before
    bucket ``i``, the bucket ``i`` with ``C_i < r <= C_i + counts[i]`` gives
    ``edges[i] + (r - C_i) / counts[i] * (edges[i+1] - edges[i])`` (``top`` as the last
    bucket's upper edge).
    """
    if not 0.0 <= q <= 1.0:
        raise StatsInputError(f"quantile q must be within [0, 1], got {q}")
    if len(counts) > len(edges):
        raise StatsInputError(
            f"histogram has {len(counts)} buckets but only {len(edges)} edges were given"
        )
    if any(count < 0 for count in counts):
        raise StatsInputError("histogram counts must be non-negative")
    n = sum(counts)
    if n == 0:
        return None
    rank = q * n
    cumulative = 0.0
    for index, count in enumerate(counts):
        if count and cumulative + count >= rank:
            low = edges[index]
            high = edges[index + 1] if index + 1 < len(edges) else top
            return low + max(rank - cumulative, 0.0) / count * (high - low)
        cumulative += count
    last = max(i for i, count in enumerate(counts) if count)
    return edges[last + 1] if last + 1 < len(edges) else top
