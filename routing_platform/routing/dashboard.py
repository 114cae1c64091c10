"""`router_dashboard.get_dashboard()`: the user's guide monitoring view, from the database.

```python
from routing_platform.routing.dashboard import router_dashboard

dashboard = router_dashboard.get_dashboard()            # all time; or window="7d", experiment="key"
dashboard["overview"]["cost_savings_percentage"]        # percent saved against the baseline
dashboard["overview"]["avg_confidence"]                 # 0-1
for alert in dashboard["alerts"]:
    print(f"[{alert['level']}] {alert['message']}")
    print(f"Action: {alert['action']}")
```

Every figure is aggregated by the database from the hourly call rollups
(``experiments.metrics``); alerts come from the rules editable in the admin
(``experiments.alerts``). The result is plain JSON-ready data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from experiments.alerts import alerts_for
from experiments.metrics import MetricsInputError, TimeWindow, dashboard_metrics
from experiments.models import Experiment

__all__ = ["RouterDashboard", "experiment_key_of", "router_dashboard"]


def experiment_key_of(experiment: str | Experiment | None) -> str | None:
    """The key of ``experiment`` (a key or an Experiment); an unknown key is refused."""
    if experiment is None or experiment == "":
        return None
    if isinstance(experiment, Experiment):
        return experiment.key
    if not isinstance(experiment, str):
        raise MetricsInputError(
            f"experiment is a key (string) or an Experiment, not {experiment!r}."
        )
    if not Experiment.objects.filter(key=experiment).exists():
        known = list(Experiment.objects.order_by("key").values_list("key", flat=True)[:20])
        hint = f" Known keys: {', '.join(known)}." if known else " There are no experiments yet."
        raise MetricsInputError(f"No experiment with key {experiment!r}.{hint}")
    return experiment


class RouterDashboard:
    """The complete monitoring view: overview, breakdowns, time series and alerts."""

    def get_dashboard(
        self,
        window: str | timedelta | TimeWindow | None = None,
        experiment: str | Experiment | None = None,
        *,
        now: datetime | None = None,
    ) -> dict:
        """The dashboard of ``window`` (None or "all": all time; "24h", "7d", ...) for one
        experiment (its key) or all traffic.

        Keys: ``window``, ``experiment``, ``overview`` (total_requests, total_cost_usd,
        baseline_cost_usd, savings_usd, cost_savings_percentage, avg_confidence,
        escalation_rate, error_rate, cost_per_request_usd, latency_p50_ms,
        latency_p95_ms, ...), ``by_complexity``, ``by_tier``, ``by_model``,
        ``by_provider``, ``by_task_type``, ``by_arm``, ``timeseries`` (with
        ``timeseries_granularity``), ``confidence_distribution``, ``alerts`` (each with
        ``level``, ``message``, ``action``) and ``generated_at``. Rates are fractions.
        Raises ``ValueError`` (``MetricsInputError``) for an unknown window or experiment.
        """
        metrics = dashboard_metrics(
            window=window, experiment_key=experiment_key_of(experiment), now=now
        )
        return {
            **metrics.as_dict(),
            "alerts": [alert.as_dict() for alert in alerts_for(metrics=metrics)],
            "generated_at": (now or timezone.now()).isoformat(),
        }


router_dashboard = RouterDashboard()
