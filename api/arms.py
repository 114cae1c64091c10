"""Experiment arms for the HTTP entry points: which arm a unit's call runs, and how the
call is recorded under it. Shared by the routing API and the OpenAI-compatible ``/v1``,
so both assign and record (and pair with shadow twins) the same way as the SDK."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from api.errors import BadRequest, NotFound
from experiments.routes import ArmRoute
from experiments.selectors import experiment_get
from experiments.services import route_for_unit


def experiment_or_404(key: str):
    """The experiment of ``key``, or a 404 that says how to find the keys (sync)."""
    experiment = experiment_get(key=key)
    if experiment is None:
        raise NotFound(f"No experiment with key {key!r}: list them with GET experiments.")
    return experiment


def unit_required(*, experiment_key: str | None, unit_id: str | None, param: str) -> None:
    """A call in an experiment names its unit: it is what the sticky arm is assigned to."""
    if experiment_key and not unit_id:
        raise BadRequest(
            f"{param} is required with experiment: it is what the sticky arm is assigned to.",
            param=param,
        )


async def arm_route(
    *, experiment_key: str | None, unit_id: str | None, param: str
) -> ArmRoute | None:
    """The unit's sticky arm in the named experiment, or None when no experiment is named.

    400 (naming ``param``) without a unit, 404 for an unknown experiment key.
    """
    if not experiment_key:
        return None
    unit_required(experiment_key=experiment_key, unit_id=unit_id, param=param)

    def route() -> ArmRoute:
        # The OpenAI paths skip Django's per-request connection signals (api.asgi), so the
        # thread that runs this refreshes its own database connection.
        close_old_connections()
        try:
            experiment = experiment_or_404(experiment_key)
            return route_for_unit(experiment=experiment, unit_id=unit_id or "")
        finally:
            close_old_connections()

    return await sync_to_async(route)()


def route_run_fields(route: ArmRoute | None) -> dict[str, Any]:
    """The strategy and router parameters a call runs with: its arm's, else smart routing."""
    if route is None:
        return {"strategy": "smart_routing", "router_params": None}
    return {"strategy": route.strategy, "router_params": dict(route.router_params)}


def route_call_fields(route: ArmRoute | None) -> dict[str, Any]:
    """The experiment, arm, phase and strategy a call is recorded under (none without a
    route, so a call outside experiments records exactly as before)."""
    if route is None:
        return {}
    counted = route.in_experiment
    return {
        "experiment": route.experiment_id if counted else None,
        "arm": route.arm_id if counted else None,
        "phase": route.phase_id if counted else None,
        "strategy": route.strategy,
    }
