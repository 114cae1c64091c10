"""Quantile intervals (latency p95) from raw values and from fixed-bucket histograms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.stats import StatsInputError, histogram_quantile_ci, quantile_ci
from experiments.stats.histograms import (
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
    LATENCY_HIST_TOP_MS,
    latency_bucket,
)


@pytest.mark.parametrize("q, alpha", [(0.95, 0.05), (0.5, 0.1), (0.99, 0.05)])
def test_order_statistic_interval_matches_scipy(rng, q, alpha):
    """The interval equals scipy.stats.quantile_test(...).confidence_interval()."""
    values = rng.lognormal(6.5, 0.6, 2000)
    result = quantile_ci(values, q, alpha=alpha)
    reference = scipy_stats.quantile_test(values, q=1000.0, p=q).confidence_interval(1 - alpha)
    assert result.ci_low == pytest.approx(reference.low, rel=1e-12)
    assert result.ci_high == pytest.approx(reference.high, rel=1e-12)
    assert result.estimate == pytest.approx(np.quantile(values, q), rel=1e-12)


def test_interval_covers_the_true_p95_about_95_percent(rng):
    """Over 400 samples of 1,000 lognormal latencies the interval holds the true p95
    in at least 93% of them (distribution-free intervals are slightly conservative)."""
    truth = float(np.exp(6.5 + 0.6 * scipy_stats.norm.ppf(0.95)))
    hits = 0
    for _ in range(400):
        result = quantile_ci(rng.lognormal(6.5, 0.6, 1000), 0.95)
        hits += result.ci_low <= truth <= result.ci_high
    assert hits / 400 >= 0.93


def test_histogram_interval_is_close_to_the_raw_one(rng):
    """Bucketed into the latency histogram, p95 and its interval stay within 3% of the
    raw-value figures."""
    values = rng.lognormal(6.5, 0.6, 20000)
    hist = [0] * LATENCY_HIST_SIZE
    for value in values:
        hist[latency_bucket(float(value))] += 1
    raw = quantile_ci(values, 0.95)
    binned = histogram_quantile_ci(hist, LATENCY_HIST_EDGES_MS, 0.95, top=LATENCY_HIST_TOP_MS)
    assert binned.n == 20000
    assert binned.estimate == pytest.approx(raw.estimate, rel=0.03)
    assert binned.ci_low == pytest.approx(raw.ci_low, rel=0.03)
    assert binned.ci_high == pytest.approx(raw.ci_high, rel=0.03)
    assert binned.log_standard_error > 0


def test_tiny_samples_have_an_open_side():
    """With 5 values the 95% interval of the p95 has no upper order statistic."""
    result = quantile_ci([1.0, 2.0, 3.0, 4.0, 5.0], 0.95)
    assert result.ci_high is None and result.log_standard_error is None


def test_empty_histogram_has_no_quantile():
    """An empty histogram gives None, not an error."""
    assert histogram_quantile_ci([0] * 5, [0, 1, 2, 3, 4], 0.95, top=5) is None


def test_bad_input_raises():
    """q outside (0, 1), empty or non-finite values are refused."""
    with pytest.raises(StatsInputError, match="q must be"):
        quantile_ci([1.0, 2.0], 1.0)
    with pytest.raises(StatsInputError, match="non-empty"):
        quantile_ci([], 0.5)
    with pytest.raises(StatsInputError, match="non-empty"):
        quantile_ci([1.0, float("nan")], 0.5)
