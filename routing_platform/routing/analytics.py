"""`analytics.get_summary()` and `analytics.export_report(path)`: cost analysis.

```python
from routing_platform.routing.analytics import analytics

summary = analytics.get_summary()          # or window="30d", experiment="key"
summary["by_complexity"]["simple"]["cost_savings_percentage"]
analytics.export_report("/tmp/report.json")
```

The summary is aggregated by the database from the hourly call rollups; the export is a
versioned JSON document (``schema_version``) holding the summary, the time series and
the alerts of the window.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from django.utils import timezone

from experiments.alerts import alerts_for
from experiments.metrics import BREAKDOWNS, DashboardMetrics, TimeWindow, dashboard_metrics
from experiments.models import Experiment
from routing_platform.routing.dashboard import experiment_key_of

__all__ = ["ANALYTICS_SCHEMA_VERSION", "Analytics", "ReportExportError", "analytics"]

#: Bump when a key of the exported document changes meaning or disappears.
ANALYTICS_SCHEMA_VERSION = 1


class ReportExportError(ValueError):
    """The report cannot be written where asked; the message says why and what to do."""


def _summary_of(metrics: DashboardMetrics) -> dict:
    overview = metrics.overview
    return {
        "window": metrics.as_dict()["window"],
        "experiment": metrics.experiment_key,
        "total_requests": overview["total_requests"],
        "total_cost_usd": overview["total_cost_usd"],
        "baseline_cost_usd": overview["baseline_cost_usd"],
        "cost_per_request_usd": overview["cost_per_request_usd"],
        "savings": {
            "usd": overview["savings_usd"],
            "percentage": overview["cost_savings_percentage"],
        },
        "avg_confidence": overview["avg_confidence"],
        "escalation_rate": overview["escalation_rate"],
        "error_rate": overview["error_rate"],
        **{name: metrics.breakdowns[name] for name in BREAKDOWNS},
        "by_arm": metrics.by_arm,
    }


def _platform_version() -> str:
    try:
        return version("routing-platform")
    except PackageNotFoundError:
        return "unknown"


def _writable_target(path: str | os.PathLike) -> Path:
    """The absolute path to write, or ReportExportError saying why it cannot be written."""
    try:
        target = Path(path).expanduser()
    except TypeError:
        raise ReportExportError(f"The report path must be a file path, not {path!r}.") from None
    if not str(path).strip():
        raise ReportExportError("Give a file path for the report, e.g. /tmp/report.json.")
    target = target.absolute()
    if target.is_dir():
        raise ReportExportError(
            f"Cannot write the report to {target}: it is a directory. "
            f"Give a file name, e.g. {target / 'report.json'}."
        )
    parent = target.parent
    if not parent.exists():
        raise ReportExportError(
            f"Cannot write the report to {target}: the directory {parent} does not exist. "
            "Create it first or choose another path."
        )
    if not parent.is_dir():
        raise ReportExportError(
            f"Cannot write the report to {target}: {parent} is a file, not a directory."
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise ReportExportError(
            f"Cannot write the report to {target}: permission denied. "
            "Choose a path you can write, e.g. /tmp/report.json."
        )
    return target


class Analytics:
    """Cost analysis by complexity, tier, model, provider, task type and arm."""

    def get_summary(
        self,
        window: str | timedelta | TimeWindow | None = None,
        experiment: str | Experiment | None = None,
        *,
        now: datetime | None = None,
    ) -> dict:
        """Totals, ``savings`` ({"usd", "percentage"}) and ``by_complexity``, ``by_tier``,
        ``by_model``, ``by_provider``, ``by_task_type``, ``by_arm`` (each a dict of
        requests, share, cost_usd, baseline_cost_usd, savings_usd,
        cost_savings_percentage, cost_per_request_usd, avg_confidence, escalation_rate,
        error_rate, ... per value, largest first)."""
        metrics = dashboard_metrics(
            window=window, experiment_key=experiment_key_of(experiment), now=now
        )
        return _summary_of(metrics)

    def export_report(
        self,
        path: str | os.PathLike,
        window: str | timedelta | TimeWindow | None = None,
        experiment: str | Experiment | None = None,
        *,
        now: datetime | None = None,
    ) -> Path:
        """Write the summary, time series and alerts as versioned JSON to ``path``; returns
        the absolute path written. The file appears whole or not at all (written beside
        it, then renamed). A path that cannot be written raises ReportExportError before
        anything is computed."""
        target = _writable_target(path)
        metrics = dashboard_metrics(
            window=window, experiment_key=experiment_key_of(experiment), now=now
        )
        document = {
            "schema_version": ANALYTICS_SCHEMA_VERSION,
            "kind": "routing-analytics-report",
            "generated_at": (now or timezone.now()).isoformat(),
            "platform_version": _platform_version(),
            "summary": _summary_of(metrics),
            "overview": metrics.overview,
            "timeseries_granularity": metrics.granularity,
            "timeseries": metrics.timeseries,
            "confidence_distribution": metrics.confidence_distribution,
            "alerts": [alert.as_dict() for alert in alerts_for(metrics=metrics)],
        }
        text = json.dumps(document, indent=2, sort_keys=False) + "\n"
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(text)
                os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is not
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as err:
            raise ReportExportError(
                f"Cannot write the report to {target}: {err.strerror or err}. "
                "Choose another path, e.g. /tmp/report.json."
            ) from err
        return target


analytics = Analytics()
