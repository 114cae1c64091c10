"""A/B testing facade of the user's guide: ``from routing_platform.routing.ab_testing import
ab_test_manager``.

```python
ab_test_manager.enabled = True             # smart_council / smart_executor calls that carry
                                           # a unit_id now run their arm's strategy
ab_test_manager.assign("user-42")          # -> "smart_routing" (sticky)
results = ab_test_manager.get_results()    # the latest report of the running experiment
if results["winner"]["strategy"] == "smart_routing": ...
```

Thin glue over ``experiments`` (assignment, recording, reports). Importing this module
never needs configured settings: its imports of ``experiments`` modules that load Django
models sit inside the methods that use them, after ``_django_ready()`` (an import of the
models before the app registry is ready raises ``AppRegistryNotReady``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings

from experiments.call_flow import route_record_fields  # pure: no Django import
from experiments.routes import ArmRoute  # pure dataclass: no Django import
from routing_platform.engine.outcome import RecordedError

logger = logging.getLogger(__name__)

__all__ = ["ABTestManager", "ArmRoute", "ab_test_manager"]


def _django_ready() -> bool:
    return bool(settings.configured) and apps.ready


class ABTestManager:
    """Sticky assignment of units to experiment arms, and the record of their calls."""

    def __init__(self, *, enabled: bool = False) -> None:
        self.enabled = enabled

    # --- experiments -----------------------------------------------------------------------

    @staticmethod
    def _experiment(experiment: Any = None):
        """An Experiment from an instance, a key, or None (the latest running one)."""
        # Inside: these load Django models (see the module docstring).
        from experiments import selectors
        from experiments.models import Experiment

        if isinstance(experiment, Experiment):
            return experiment
        if experiment:
            return (
                Experiment.objects.select_related("serving_arm").filter(key=str(experiment)).first()
            )
        return selectors.experiment_running()

    def route(self, unit_id: str, experiment: Any = None):
        """The unit's ArmRoute (sticky), or None when no experiment applies to it."""
        if not unit_id or not _django_ready():
            return None
        from experiments import services  # loads Django models (see the module docstring)

        found = self._experiment(experiment)
        if found is None:
            return None
        return services.route_for_unit(experiment=found, unit_id=str(unit_id))

    def assign(self, unit_id: str, experiment: Any = None) -> str | None:
        """The key of the unit's arm in ``experiment`` (default: the running one), or None
        when the unit is outside the experiment's traffic or no experiment runs."""
        route = self.route(unit_id, experiment)
        return route.arm_key if route is not None else None

    async def aroute(self, *, unit_id: str | None, experiment: Any = None, kind: str = "execute"):
        """The route of an SDK call (None when disabled, without a unit or experiment)."""
        if not self.enabled or not unit_id or not _django_ready():
            return None
        return await sync_to_async(self.route, thread_sensitive=True)(unit_id, experiment)

    # --- recording --------------------------------------------------------------------------

    def record(
        self,
        *,
        kind: str,
        route: Any = None,
        unit_id: str | None = "",
        task_type: str = "",
        request_payload: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        error: RecordedError | BaseException | str | None = None,
        source: str = "sdk",
    ):
        """Record one routed call (under its arm when ``route`` is in the experiment; the
        service may queue its shadow twin). Returns the RoutedCall, or None without Django."""
        if not _django_ready():
            return None
        # Loads Django models (see the module docstring).
        from experiments.services.routed_calls import routed_call_write

        return routed_call_write(
            kind=kind,
            source=source,
            unit_id=unit_id or "",
            task_type=task_type or "",
            request_payload=dict(request_payload or {}),
            result=result,
            error=error,
            **route_record_fields(route),
        )

    async def arecord(self, **fields: Any):
        """Async ``record`` (the same keyword arguments) for the SDK; a no-op when Django
        settings are not configured.

        Recording never breaks the caller's call: a database failure is logged, not raised.
        """
        if not _django_ready():
            return None
        try:
            return await sync_to_async(self.record, thread_sensitive=True)(**fields)
        except Exception:
            logger.exception(
                "routed call not recorded (kind=%s, unit=%s)",
                fields.get("kind"),
                fields.get("unit_id"),
            )
            return None

    # --- results ----------------------------------------------------------------------------

    def get_results(self, experiment: Any = None) -> dict:
        """The latest report of ``experiment`` (default: the running one, else the newest).

        With the statistics module (``experiments.reports``) it is ``experiment_report``:
        decision, per-arm statistics, tests, checklist. Without it: per-arm counts and
        means. Either way ``results["winner"]["strategy"]`` can be read (None: no winner).
        """
        if not _django_ready():
            return _empty_results("Django is not configured: set DJANGO_SETTINGS_MODULE.")
        from experiments import selectors  # loads Django models (see the module docstring)

        found = self._experiment(experiment) if experiment else selectors.experiment_default()
        if found is None:
            return _empty_results(
                "No experiment yet: create one in the admin or run `manage.py routing demo-seed`."
            )
        try:  # loads Django models; optional (see _summary_results)
            from experiments.reports import experiment_report
        except ModuleNotFoundError as err:
            if err.name != "experiments.reports":
                raise
            return _summary_results(found)
        report = dict(experiment_report(experiment=found))
        # The guide reads results["winner"]["strategy"]: derive it from the decision.
        if not isinstance(report.get("winner"), Mapping):
            report["winner"] = _winner_from_report(report, found)
        return report


def _empty_results(message: str) -> dict:
    return {
        "experiment": None,
        "decision": "no experiment",
        "message": message,
        "winner": {"arm": None, "strategy": None},
        "arms": [],
    }


def _winner_from_report(report: Mapping[str, Any], experiment) -> dict:
    """``{"arm", "strategy"}`` of the report's winner (both None while there is none)."""
    decision = report.get("decision")
    arm_key = None
    if isinstance(decision, Mapping) and decision.get("status") == "winner":
        arm_key = decision.get("arm")
    strategy = None
    if arm_key:
        strategy = next((arm.strategy for arm in experiment.arms.all() if arm.key == arm_key), None)
    return {"arm": arm_key, "strategy": strategy}


def _summary_results(experiment) -> dict:
    """Per-arm counts and means, for when the statistics report is not installed."""
    from experiments import selectors  # loads Django models (see the module docstring)

    return {
        "experiment": experiment.key,
        "status": experiment.status,
        "traffic_percentage": experiment.traffic_percentage,
        "decision": "no winner yet",
        "message": "Per-arm counts and means only: the statistics report is not available.",
        "winner": {"arm": None, "strategy": None},
        "arms": selectors.experiment_arm_summary(experiment=experiment),
    }


#: The process-wide manager of the user's guide. Off by default: calls run the platform's
#: strategy (ENABLE_SMART_ROUTING) until you enable A/B testing.
ab_test_manager = ABTestManager(enabled=False)
