"""Experiment arms for the HTTP entry points: which arm a unit's call runs (400 without a
unit, 404 for an unknown experiment). Shared by the routing API and the OpenAI-compatible
``/v1``; how a call runs and is recorded under its arm is ``experiments.call_flow``, the
same as for the SDK."""

from __future__ import annotations

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
