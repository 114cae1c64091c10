"""`router_dashboard.get_dashboard()`: the guide's monitoring call, its keys and filters."""

from __future__ import annotations

import json

import pytest

from experiments.metrics import MetricsInputError
from routing_platform.routing.dashboard import router_dashboard
from tests.metrics_factories import (
    ensure_default_alert_rules,
    make_calls,
    make_experiment,
    recent_hour,
)

pytestmark = pytest.mark.django_db


def test_guide_snippet_works_on_an_empty_database():
    """The guide's lines run (and format) before any call was recorded."""
    dashboard = router_dashboard.get_dashboard()
    assert (
        f"Cost savings: {dashboard['overview']['cost_savings_percentage']:.1f}%"
        == "Cost savings: 0.0%"
    )
    assert f"{dashboard['overview']['avg_confidence']:.3f}" == "0.000"
    assert dashboard["alerts"] == []


def test_dashboard_has_every_section_the_guide_and_issue_name():
    """Overview, six breakdowns, a time series and alerts with level, message and action."""
    ensure_default_alert_rules()
    make_calls([{"confidence": 0.45}] * 30)
    dashboard = router_dashboard.get_dashboard()
    overview = dashboard["overview"]
    for key in (
        "total_requests",
        "total_cost_usd",
        "baseline_cost_usd",
        "cost_savings_percentage",
        "avg_confidence",
        "escalation_rate",
        "error_rate",
        "cost_per_request_usd",
        "latency_p50_ms",
        "latency_p95_ms",
    ):
        assert key in overview
    for key in ("by_complexity", "by_tier", "by_model", "by_provider", "by_task_type", "by_arm"):
        assert dashboard[key], key
    assert dashboard["timeseries"] and dashboard["timeseries"][0]["requests"] == 30
    [alert] = dashboard["alerts"]
    assert alert["level"] == "warning"
    assert "0.450" in alert["message"]
    assert alert["action"]
    json.dumps(dashboard)  # plain JSON-ready data


def test_dashboard_window_and_experiment_filters():
    """window='24h' leaves out older calls; experiment=KEY (or the Experiment) keeps its calls."""
    experiment, control, smart = make_experiment()
    make_calls(
        [
            {"completed_at": recent_hour(0), "experiment": experiment, "arm": smart},
            {"completed_at": recent_hour(0)},
            {"completed_at": recent_hour(72)},
        ]
    )
    assert router_dashboard.get_dashboard(window="24h")["overview"]["total_requests"] == 2
    assert router_dashboard.get_dashboard()["overview"]["total_requests"] == 3
    by_key = router_dashboard.get_dashboard(experiment="smart-vs-council")
    by_object = router_dashboard.get_dashboard(experiment=experiment)
    assert by_key["overview"]["total_requests"] == by_object["overview"]["total_requests"] == 1
    assert by_key["experiment"] == "smart-vs-council"


def test_unknown_experiment_names_the_known_keys():
    """An unknown experiment key is a ValueError that lists the keys there are."""
    make_experiment()
    with pytest.raises(MetricsInputError, match="smart-vs-council"):
        router_dashboard.get_dashboard(experiment="nope")


def test_bad_window_is_a_value_error():
    """A malformed window is refused with the accepted forms."""
    with pytest.raises(ValueError, match="24h"):
        router_dashboard.get_dashboard(window="yesterday")


def test_get_dashboard_query_count_is_fixed(django_assert_num_queries):
    """Once the closed days are compacted: metrics (5: compaction check 2, cube on two
    tables, hourly arm rows), then alerts (rules, error baseline, experiments, arms,
    phases, units, the phases' call sums, latency histograms, unit sums and
    quality-signal sums: 10)."""
    ensure_default_alert_rules()
    make_experiment()
    make_calls([{"completed_at": recent_hour(hours)} for hours in range(0, 60, 2)])
    router_dashboard.get_dashboard(window="7d")  # compacts the closed days
    with django_assert_num_queries(15):
        router_dashboard.get_dashboard(window="7d")
