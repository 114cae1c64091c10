"""Histogram bucket edges and quantiles estimated from bucket counts."""

from __future__ import annotations

import pytest

from experiments.stats import StatsInputError
from experiments.stats.histograms import (
    CONFIDENCE_HIST_EDGES,
    CONFIDENCE_HIST_SIZE,
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
    confidence_bucket,
    hist_quantile,
    hist_sum,
    latency_bucket,
)


def test_latency_buckets_follow_the_edges():
    """Each value lands in the bucket whose edges surround it; 20 buckets per decade."""
    assert LATENCY_HIST_SIZE == 122
    assert latency_bucket(0.2) == 0
    assert latency_bucket(1.0) == 1
    assert latency_bucket(1000.0) == 61
    assert latency_bucket(10**7) == LATENCY_HIST_SIZE - 1
    for value in (3.7, 45.0, 812.0, 15_000.0):
        index = latency_bucket(value)
        assert LATENCY_HIST_EDGES_MS[index] <= value < LATENCY_HIST_EDGES_MS[index + 1]


def test_confidence_buckets_are_two_points_wide():
    """Confidence 0.58 is bucket 29 despite binary floating point; 1.0 is the last bucket."""
    assert CONFIDENCE_HIST_SIZE == 50
    assert confidence_bucket(0.58) == 29
    assert confidence_bucket(1.0) == 49
    assert CONFIDENCE_HIST_EDGES[29] == pytest.approx(0.58)


def test_quantile_interpolates_inside_the_bucket():
    """Uniform counts over unit buckets give linear quantiles."""
    counts = [10, 10, 10, 10]
    edges = [0.0, 1.0, 2.0, 3.0]
    assert hist_quantile(counts, edges, 0.5, top=4.0) == pytest.approx(2.0)
    assert hist_quantile(counts, edges, 0.95, top=4.0) == pytest.approx(3.8)
    assert hist_quantile([0, 0, 0, 0], edges, 0.5, top=4.0) is None


def test_sums_pad_short_histograms():
    """Bucket-wise sums treat missing buckets as zero."""
    assert hist_sum([[1, 2], [1, 1, 1], None], 3) == [2, 3, 1]


def test_bad_input_raises():
    """q outside [0, 1], negative counts or NaN values are refused."""
    with pytest.raises(StatsInputError, match="within"):
        hist_quantile([1], [0.0], 1.5, top=1.0)
    with pytest.raises(StatsInputError, match="non-negative"):
        hist_quantile([1, -1], [0.0, 1.0], 0.5, top=2.0)
    with pytest.raises(StatsInputError, match="NaN"):
        latency_bucket(float("nan"))
