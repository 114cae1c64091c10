"""`analytics.get_summary()` and `analytics.export_report(path)`."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from routing_platform.routing.analytics import (
    ANALYTICS_SCHEMA_VERSION,
    ReportExportError,
    analytics,
)
from tests.metrics_factories import ensure_default_alert_rules, make_calls, make_experiment

pytestmark = pytest.mark.django_db


def _traffic():
    experiment, control, smart = make_experiment()
    make_calls(
        [{"complexity": "simple", "experiment": experiment, "arm": smart}] * 6
        + [
            {
                "complexity": "medium",
                "tier": "standard",
                "model": "gpt-4o",
                "task_type": "creative",
                "cost_usd": Decimal("0.0040"),
                "baseline_cost_usd": Decimal("0.0100"),
                "experiment": experiment,
                "arm": smart,
            }
        ]
        * 3
        + [
            {
                "complexity": "complex",
                "tier": "premium",
                "model": "claude-opus",
                "strategy": "original_council",
                "cost_usd": Decimal("0.0100"),
                "baseline_cost_usd": Decimal("0.0100"),
                "experiment": experiment,
                "arm": control,
            }
        ]
        * 1
    )


def test_summary_breaks_costs_down_as_the_guide_prints():
    """by_complexity shows simple tasks saving 90%, medium 60%, complex 0%; savings add up."""
    _traffic()
    summary = analytics.get_summary()
    by_complexity = summary["by_complexity"]
    assert by_complexity["simple"]["cost_savings_percentage"] == pytest.approx(90.0)
    assert by_complexity["medium"]["cost_savings_percentage"] == pytest.approx(60.0)
    assert by_complexity["complex"]["cost_savings_percentage"] == pytest.approx(0.0)
    assert summary["total_requests"] == 10
    assert summary["savings"]["usd"] == pytest.approx(0.1 - 0.028)
    assert summary["savings"]["percentage"] == pytest.approx(72.0)
    assert set(summary["by_model"]) == {"gpt-4o-mini", "gpt-4o", "claude-opus"}
    assert summary["by_task_type"]["creative"]["requests"] == 3
    assert summary["by_arm"]["smart-vs-council/smart"]["requests"] == 9


def test_summary_of_one_experiment_and_window():
    """The summary takes the same window and experiment filters as the dashboard."""
    _traffic()
    make_calls([{}], rebuild=True)
    assert analytics.get_summary()["total_requests"] == 11
    assert (
        analytics.get_summary(window="24h", experiment="smart-vs-council")["total_requests"] == 10
    )


def test_export_report_writes_versioned_json(tmp_path):
    """The export is JSON with schema_version, the summary, time series and alerts."""
    ensure_default_alert_rules()
    _traffic()
    written = analytics.export_report(tmp_path / "report.json")
    document = json.loads(written.read_text())
    assert written == (tmp_path / "report.json").absolute()
    assert document["schema_version"] == ANALYTICS_SCHEMA_VERSION
    assert document["kind"] == "routing-analytics-report"
    assert document["summary"]["by_complexity"]["simple"]["requests"] == 6
    assert document["timeseries"][0]["requests"] == 10
    assert isinstance(document["alerts"], list)
    assert list(tmp_path.iterdir()) == [written]  # no temporary file left behind


def test_export_report_replaces_an_existing_file(tmp_path):
    """Exporting again over the same path replaces the file whole."""
    target = tmp_path / "report.json"
    target.write_text("old")
    analytics.export_report(str(target))
    assert json.loads(target.read_text())["schema_version"] == ANALYTICS_SCHEMA_VERSION


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "missing-dir" / "report.json", "does not exist"),
        (lambda tmp: tmp, "is a directory"),
        (
            lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0] / "report.json",
            "is a file, not a directory",
        ),
        (lambda tmp: "", "Give a file path"),
    ],
)
def test_export_report_refuses_paths_it_cannot_write(tmp_path, make_path, message):
    """A path in a missing directory, a directory, or under a file is refused with a message
    that says why and what to do, and nothing is written."""
    with pytest.raises(ReportExportError, match=message):
        analytics.export_report(make_path(tmp_path))


def test_export_report_refuses_a_read_only_directory(tmp_path, monkeypatch):
    """A directory the process may not write is refused up front with "permission denied"
    (os.access is stubbed: these tests run as root, whom permissions do not stop)."""
    import os

    from routing_platform.routing import analytics as analytics_module

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        analytics_module.os,
        "access",
        lambda path, mode: False if str(path) == str(locked) else real_access(path, mode),
    )
    with pytest.raises(ReportExportError, match="permission denied"):
        analytics.export_report(locked / "report.json")
    assert list(locked.iterdir()) == []


def test_export_report_turns_write_failures_into_a_clear_error(tmp_path, monkeypatch):
    """An OS error while writing (disk full, ...) becomes ReportExportError naming the path."""
    from routing_platform.routing import analytics as analytics_module

    def failing_mkstemp(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(analytics_module.tempfile, "mkstemp", failing_mkstemp)
    with pytest.raises(ReportExportError, match="No space left on device"):
        analytics.export_report(tmp_path / "report.json")
