"""Route -> run -> record: the one flow of a routed call, for every entry point.

The SDK facade (``routing_platform.routing.integration``), the routing API
(``api.routing_api``) and ``/v1`` (``api.openai_api``) each find the call's route (its
experiment arm, or none), then hand ``routed_call_run`` the engine call and a recorder.
It runs the engine with the arm's strategy and router parameters, turns the engine's
answer into a ``CallOutcome`` (or its ``RoutingError`` into a ``RecordedError``), and
records the call under its arm, success or failure. Recording a call in an experiment is
also where its shadow twin is decided (``experiments.services.routed_call_record``).

Entry points differ only in what they pass: how the route is found (the SDK's
``ab_test_manager`` never fails a call; the HTTP APIs answer 400/404), and how the record
is written (inline for the SDK and the routing API, whose answer carries the call id;
handed to Redis for ``/v1``, ``api.recording``). Pure: no Django import, so the SDK
facade imports it without configured settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from experiments.routes import ArmRoute
from routing_platform.engine.errors import RoutingError
from routing_platform.engine.outcome import CallOutcome, RecordedError

DEFAULT_STRATEGY = "smart_routing"

T = TypeVar("T")


class RouteLike(Protocol):
    """An ``ArmRoute``, or what the SDK's A/B facade returns in its place."""

    strategy: str
    router_params: Mapping[str, Any]


@dataclass(frozen=True)
class CallRequest:
    """What is recorded of a call besides its outcome."""

    kind: str
    source: str
    unit_id: str = ""
    task_type: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CallRecord:
    """One call to record: its request, route, and outcome or error (exactly one)."""

    request: CallRequest
    route: ArmRoute | None
    outcome: CallOutcome | None = None
    error: RecordedError | None = None

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of ``experiments.services.routed_call_write``."""
        fields: dict[str, Any] = {
            "kind": self.request.kind,
            "source": self.request.source,
            "unit_id": self.request.unit_id or "",
            "task_type": self.request.task_type or "",
            "request_payload": dict(self.request.payload),
            "result": self.outcome.result if self.outcome is not None else None,
            "error": self.error,
            **route_record_fields(self.route),
        }
        if self.request.idempotency_key:
            fields["idempotency_key"] = self.request.idempotency_key
        return fields


EngineRun = Callable[..., Awaitable[Mapping[str, Any]]]
Recorder = Callable[[CallRecord], Awaitable[T]]


def route_run_fields(route: RouteLike | None) -> dict[str, Any]:
    """The strategy and router parameters a call runs with: its arm's, else smart routing."""
    if route is None:
        return {"strategy": DEFAULT_STRATEGY, "router_params": None}
    return {"strategy": route.strategy, "router_params": dict(route.router_params or {})}


def route_record_fields(route: Any) -> dict[str, Any]:
    """The experiment, arm, phase and strategy a call is recorded under (none without a
    route, so a call outside experiments records exactly as before). A route whose
    experiment is over (``in_experiment`` False) runs its arm but is not counted."""
    if route is None:
        return {}
    counted = getattr(route, "in_experiment", True)
    return {
        "experiment": route.experiment_id if counted else None,
        "arm": route.arm_id if counted else None,
        "phase": route.phase_id if counted else None,
        "strategy": route.strategy,
    }


def outcome_or_error(
    result: Mapping[str, Any] | None, error: BaseException | RecordedError | None
) -> tuple[CallOutcome | None, RecordedError | None]:
    """A finished call's typed outcome, or its typed error."""
    if error is not None:
        if isinstance(error, RecordedError):
            return None, error
        return None, RecordedError.from_exception(error)
    return CallOutcome.from_result(result or {}), None


async def routed_call_run(
    *,
    request: CallRequest,
    route: Any,
    run: EngineRun,
    record: Recorder[T],
) -> tuple[CallOutcome, T]:
    """Run ``run(strategy=..., router_params=...)`` on the route's arm and record the call.

    Returns the outcome and what ``record`` returned (the RoutedCall, or how the record
    was handed off). A ``RoutingError`` is recorded as a ``RecordedError``, then raised
    for the entry point to answer in its error shape.
    """
    try:
        result = await run(**route_run_fields(route))
    except RoutingError as err:
        await record(CallRecord(request, route, error=RecordedError.from_exception(err)))
        raise
    outcome = CallOutcome.from_result(result)
    return outcome, await record(CallRecord(request, route, outcome=outcome))
