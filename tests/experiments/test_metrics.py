"""Dashboard metrics: windows, overview, breakdowns, time series, histograms, from rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from experiments import metrics
from experiments.metrics import MetricsInputError, dashboard_metrics, window_resolve
from experiments.stats.histograms import LATENCY_HIST_SIZE
from tests.metrics_factories import make_calls, make_experiment, recent_hour

NOW = datetime(2026, 11, 20, 12, 34, tzinfo=UTC)


# --- windows (no database) -------------------------------------------------------------


def test_window_none_is_all_time_ending_after_the_current_hour():
    """No window means all time; the window ends at the start of the next hour."""
    window = window_resolve(None, now=NOW)
    assert window.key == "all"
    assert window.since is None
    assert window.until == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)


def test_hour_windows_are_whole_hours_back_from_the_next_hour():
    """'24h' covers the 24 whole hours ending after the current hour."""
    window = window_resolve("24h", now=NOW)
    assert window.until - window.since == timedelta(hours=24)
    assert window.since == datetime(2026, 11, 19, 13, 0, tzinfo=UTC)
    assert window.label == "Last 24 hours"


@pytest.mark.parametrize(
    ("text", "first_day", "label"),
    [
        ("7d", datetime(2026, 11, 14, tzinfo=UTC), "Last 7 days"),
        ("1d", datetime(2026, 11, 20, tzinfo=UTC), "Last 1d"),
        ("2w", datetime(2026, 11, 7, tzinfo=UTC), "Last 2w"),
    ],
)
def test_day_windows_are_calendar_days_including_today(text, first_day, label):
    """'7d' is today and the six days before, from 00:00 UTC, so no series starts with a
    partial day."""
    window = window_resolve(text, now=NOW)
    assert window.since == first_day
    assert window.until == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
    assert window.label == label


def test_window_timedelta_is_accepted():
    """A timedelta counts whole hours, like a window in hours."""
    assert window_resolve(timedelta(days=1), now=NOW).since == window_resolve("24h", now=NOW).since


@pytest.mark.parametrize("bad", ["3x", "seven days", "0h", "-1d", 12])
def test_bad_windows_are_refused_with_the_accepted_forms(bad):
    """A malformed window raises a ValueError that names the accepted forms."""
    with pytest.raises(MetricsInputError, match=r"24h|at least one hour|string like"):
        window_resolve(bad, now=NOW)


# --- aggregation ------------------------------------------------------------------------


@pytest.mark.django_db
def test_empty_database_gives_zeros_not_errors():
    """With no calls every figure is zero (or None for latency) and nothing raises."""
    result = dashboard_metrics()
    overview = result.overview
    assert overview["total_requests"] == 0
    assert overview["cost_savings_percentage"] == 0.0
    assert overview["avg_confidence"] == 0.0
    assert overview["latency_p50_ms"] is None
    assert result.timeseries == []
    assert result.breakdowns["by_complexity"] == {}
    assert sum(bucket["count"] for bucket in result.confidence_distribution) == 0


@pytest.mark.django_db
def test_overview_sums_costs_and_rates_exactly():
    """Requests, cost, baseline, savings %, confidence, escalation and error rates add up
    from the calls (Decimal money summed exactly)."""
    make_calls(
        [
            {
                "cost_usd": Decimal("0.0010"),
                "baseline_cost_usd": Decimal("0.0100"),
                "confidence": 0.9,
            },
            {
                "cost_usd": Decimal("0.0030"),
                "baseline_cost_usd": Decimal("0.0100"),
                "confidence": 0.5,
                "escalated": True,
            },
            {
                "status": "error",
                "cost_usd": Decimal("0"),
                "baseline_cost_usd": Decimal("0"),
                "confidence": None,
                "latency_ms": None,
            },
            {
                "cost_usd": Decimal("0.0020"),
                "baseline_cost_usd": Decimal("0.0100"),
                "confidence": 0.7,
            },
        ]
    )
    overview = dashboard_metrics(window="24h").overview
    assert overview["total_requests"] == 4
    assert overview["failed_requests"] == 1
    assert overview["total_cost_usd"] == pytest.approx(0.006)
    assert overview["baseline_cost_usd"] == pytest.approx(0.03)
    assert overview["cost_savings_percentage"] == pytest.approx(80.0)
    assert overview["cost_per_request_usd"] == pytest.approx(0.0015)
    assert overview["avg_confidence"] == pytest.approx(0.7)
    assert overview["escalation_rate"] == pytest.approx(0.25)
    assert overview["error_rate"] == pytest.approx(0.25)
    assert overview["input_tokens"] == 400


@pytest.mark.django_db
def test_latency_percentiles_come_from_summed_histograms():
    """p50 / p95 are estimated from the summed latency histograms: within a bucket width
    (12%) of the true quantiles of the calls."""
    latencies = [100.0 + 10 * index for index in range(100)]  # 100 .. 1090 ms
    make_calls([{"latency_ms": latency} for latency in latencies])
    overview = dashboard_metrics(window="24h").overview
    assert overview["latency_p50_ms"] == pytest.approx(595, rel=0.12)
    assert overview["latency_p95_ms"] == pytest.approx(1045, rel=0.12)
    assert overview["avg_latency_ms"] == pytest.approx(595.0)


@pytest.mark.django_db
def test_window_leaves_out_older_calls_and_experiment_filter_others():
    """The window keeps only calls completed inside it; the experiment filter only its calls."""
    experiment, control, smart = make_experiment()
    make_calls(
        [
            {"completed_at": recent_hour(0)},
            {"completed_at": recent_hour(30)},
            {"completed_at": recent_hour(24 * 10)},
            {"completed_at": recent_hour(1), "experiment": experiment, "arm": smart},
        ]
    )
    assert dashboard_metrics(window="24h").overview["total_requests"] == 2
    assert dashboard_metrics(window="7d").overview["total_requests"] == 3
    assert dashboard_metrics(window=None).overview["total_requests"] == 4
    only = dashboard_metrics(window=None, experiment_key=experiment.key)
    assert only.overview["total_requests"] == 1
    assert list(only.by_arm) == ["smart-vs-council/smart"]


@pytest.mark.django_db
def test_shadow_calls_are_counted_apart():
    """Shadow calls stay out of the requests and cost, and show as shadow figures."""
    make_calls([{}, {"is_shadow": True, "cost_usd": Decimal("0.0500")}])
    overview = dashboard_metrics(window="24h").overview
    assert overview["total_requests"] == 1
    assert overview["total_cost_usd"] == pytest.approx(0.001)
    assert overview["shadow_requests"] == 1
    assert overview["shadow_cost_usd"] == pytest.approx(0.05)


@pytest.mark.django_db
def test_breakdowns_group_every_dimension_largest_first():
    """By complexity, tier, model, provider and task type: figures per value, the largest
    first, shares summing to 1, an empty value reading 'unknown'."""
    make_calls(
        [{"complexity": "simple"}] * 3
        + [
            {
                "complexity": "complex",
                "tier": "premium",
                "model": "claude-opus",
                "provider": "anthropic",
                "task_type": "creative",
                "cost_usd": Decimal("0.0200"),
                "baseline_cost_usd": Decimal("0.0200"),
            }
        ]
        + [{"complexity": "", "status": "error", "task_type": "creative"}]
    )
    result = dashboard_metrics(window="24h")
    by_complexity = result.breakdowns["by_complexity"]
    assert list(by_complexity) == ["simple", "complex", "unknown"]
    assert by_complexity["simple"]["requests"] == 3
    assert by_complexity["simple"]["cost_savings_percentage"] == pytest.approx(90.0)
    assert by_complexity["complex"]["cost_savings_percentage"] == pytest.approx(0.0)
    assert by_complexity["unknown"]["error_rate"] == 1.0
    assert sum(entry["share"] for entry in by_complexity.values()) == pytest.approx(1.0)
    assert set(result.breakdowns["by_provider"]) == {"openai", "anthropic"}
    assert result.breakdowns["by_task_type"]["creative"]["requests"] == 2
    assert result.breakdowns["by_model"]["claude-opus"]["cost_per_request_usd"] == pytest.approx(
        0.02
    )
    assert set(result.breakdowns) == {
        "by_complexity",
        "by_tier",
        "by_model",
        "by_provider",
        "by_task_type",
    }


@pytest.mark.django_db
def test_by_arm_labels_experiment_arms_and_reports_their_p95():
    """Arms read 'experiment/arm' with their strategy and latency p95; calls outside
    experiments are 'none' and come last."""
    experiment, control, smart = make_experiment()
    make_calls(
        [{"experiment": experiment, "arm": smart, "latency_ms": 100.0}] * 4
        + [
            {
                "experiment": experiment,
                "arm": control,
                "strategy": "original_council",
                "latency_ms": 1000.0,
            }
        ]
        * 2
        + [{}]
    )
    by_arm = dashboard_metrics(window="24h").by_arm
    assert list(by_arm) == ["smart-vs-council/council", "smart-vs-council/smart", "none"]
    assert by_arm["smart-vs-council/council"]["strategy"] == "original_council"
    assert by_arm["smart-vs-council/smart"]["requests"] == 4
    assert by_arm["smart-vs-council/council"]["latency_p95_ms"] == pytest.approx(1000, rel=0.12)


@pytest.mark.django_db
def test_timeseries_is_hourly_for_a_day_and_daily_for_a_week():
    """A 24-hour window gives one point per hour with calls; a 7-day window one per day."""
    make_calls(
        [
            {"completed_at": recent_hour(0)},
            {"completed_at": recent_hour(0)},
            {"completed_at": recent_hour(2), "escalated": True},
            {"completed_at": recent_hour(50)},
        ]
    )
    hourly = dashboard_metrics(window="24h")
    assert hourly.granularity == "hour"
    assert [point["requests"] for point in hourly.timeseries] == [1, 2]
    assert hourly.timeseries[0]["escalation_rate"] == 1.0
    assert hourly.timeseries[1]["latency_p50_ms"] == pytest.approx(100, rel=0.12)
    daily = dashboard_metrics(window="7d")
    assert daily.granularity == "day"
    assert sum(point["requests"] for point in daily.timeseries) == 4
    assert all(point["bucket_start"].endswith("T00:00:00+00:00") for point in daily.timeseries)


@pytest.mark.django_db
def test_confidence_distribution_counts_each_call_once():
    """The confidence distribution holds one count per call with a confidence, in its bucket."""
    make_calls(
        [{"confidence": 0.31}, {"confidence": 0.31}, {"confidence": 0.99}, {"confidence": None}]
    )
    buckets = dashboard_metrics(window="24h").confidence_distribution
    assert sum(bucket["count"] for bucket in buckets) == 3
    bucket = next(bucket for bucket in buckets if bucket["low"] <= 0.31 < bucket["high"])
    assert bucket["count"] == 2
    assert buckets[-1]["high"] == 1.0 and buckets[-1]["count"] == 1


@pytest.mark.django_db
def test_hourly_window_takes_two_queries(django_assert_num_queries):
    """A 24-hour window: the cube, and the hourly arm rows (series and histograms)."""
    make_calls([{"completed_at": recent_hour(hours)} for hours in range(0, 24, 2)])
    with django_assert_num_queries(2):
        result = dashboard_metrics(window="24h")
    assert result.overview["total_requests"] == 12


@pytest.mark.django_db
def test_daily_window_takes_five_queries_once_compacted(django_assert_num_queries):
    """A 7-day window, days already compacted: two to check the compaction, the cube on
    each table (daily, hourly), the hourly arm rows (series and histograms)."""
    experiment, control, smart = make_experiment()
    make_calls(
        [
            {"completed_at": recent_hour(hours), "experiment": experiment, "arm": smart}
            for hours in range(0, 140, 3)
        ]
    )
    first = dashboard_metrics(window="7d")
    with django_assert_num_queries(5):
        again = dashboard_metrics(window="7d")
    assert again.overview == first.overview
    assert again.overview["total_requests"] > 0


def test_parse_hists_falls_back_for_rows_of_another_length():
    """Histograms of an unexpected length are padded or cut instead of misaligning."""
    matrix = metrics.parse_hists(
        ["[1, 2]", "[]", "[" + ", ".join(["1"] * LATENCY_HIST_SIZE) + "]"], LATENCY_HIST_SIZE
    )
    assert matrix.shape == (3, LATENCY_HIST_SIZE)
    assert matrix[0, :3].tolist() == [1, 2, 0]
    assert matrix[1].sum() == 0
    assert matrix[2].sum() == LATENCY_HIST_SIZE


@pytest.mark.django_db
def test_series_adds_up_to_the_overview():
    """The series (from the arm rollups) and the overview (from the cube) agree: requests,
    errors, cost and escalations summed over the points equal the totals."""
    experiment, control, smart = make_experiment()
    make_calls(
        [
            {
                "completed_at": recent_hour(hours),
                "experiment": experiment,
                "arm": smart,
                "escalated": hours % 2 == 0,
            }
            for hours in range(0, 100, 3)
        ]
        + [
            {"completed_at": recent_hour(hours), "status": "error", "confidence": None}
            for hours in range(0, 100, 7)
        ]
    )
    result = dashboard_metrics(window="7d")
    points = result.timeseries
    overview = result.overview
    assert sum(point["requests"] for point in points) == overview["total_requests"]
    assert sum(point["errors"] for point in points) == overview["failed_requests"]
    assert sum(point["cost_usd"] for point in points) == pytest.approx(overview["total_cost_usd"])
    escalated = sum(point["escalation_rate"] * point["requests"] for point in points)
    assert escalated == pytest.approx(overview["escalation_rate"] * overview["total_requests"])
