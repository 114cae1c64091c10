"""Drop-in replacements for the original council and direct model calls.

    from routing_platform.routing.integration import council, smart_council, smart_executor

    result = await council.evaluate_script(script, niche)         # the original ensemble
    result = await smart_council.evaluate_script(script, niche)   # same keys + _routing_metadata
    out = await smart_executor.execute(text=prompt, task_type="analysis")

With `ENABLE_SMART_ROUTING=false` the smart objects behave as the original (their metadata
says strategy "original_council"): the rollback needs no code change. When the A/B facade
(`routing_platform.routing.ab_testing.ab_test_manager`) is present, each call asks it for
an arm (`aroute`) and reports the outcome (`arecord`); a failure there is logged and never
fails the user's call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from experiments.call_flow import CallRecord, CallRequest, routed_call_run
from routing_platform import runtime
from routing_platform.routing.ab_testing import ab_test_manager

logger = logging.getLogger(__name__)

__all__ = [
    "council",
    "smart_council",
    "smart_executor",
    "OriginalCouncil",
    "SmartCouncil",
    "SmartExecutor",
]


def _request_unit_id() -> str:
    """A unit for a call that names none: the request itself is randomised (not sticky)."""
    return f"call-{uuid.uuid4().hex}"


def _ab_manager():
    """The A/B facade asked for each call's arm (tests replace it)."""
    return ab_test_manager


async def _aroute(*, unit_id: str, experiment: str | None, kind: str):
    manager = _ab_manager()
    if manager is None or not hasattr(manager, "aroute"):
        return None
    try:
        return await manager.aroute(unit_id=unit_id, experiment=experiment, kind=kind)
    except Exception:  # an experiment problem must not fail the user's call
        logger.warning("A/B routing failed; using the default strategy", exc_info=True)
        return None


async def _arecord(record: CallRecord) -> None:
    """The SDK's record step: through the A/B facade, never failing the user's call."""
    manager = _ab_manager()
    if manager is None or not hasattr(manager, "arecord"):
        return
    request = record.request
    try:
        await manager.arecord(
            source=request.source,
            kind=request.kind,
            route=record.route,
            unit_id=request.unit_id,
            task_type=request.task_type,
            request_payload=request.payload,
            result=record.outcome.result if record.outcome is not None else None,
            error=record.error,
        )
    except Exception:
        logger.warning("recording the routed call failed", exc_info=True)


def _annotate(result: dict, route) -> dict:
    if route is not None and isinstance(result.get("_routing_metadata"), dict):
        result["_routing_metadata"]["experiment"] = getattr(route, "experiment_key", None)
        result["_routing_metadata"]["arm"] = getattr(route, "arm_key", None)
    return result


class OriginalCouncil:
    """The original ensemble: every configured provider's premium model, in parallel."""

    async def evaluate_script(self, script: str, niche: str = "general") -> dict[str, Any]:
        result = await runtime.run_evaluate(script=script, niche=niche, strategy="original_council")
        # The original API returned no routing metadata; keep its shape exactly.
        result.pop("_routing_metadata", None)
        return result


async def _routed_call(
    *,
    kind: str,
    unit_id: str | None,
    experiment: str | None,
    task_type: str,
    request_payload: dict[str, Any],
    call: Callable[[str, dict | None], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Ask the A/B facade for an arm, run ``call(strategy, router_params)``, record the
    outcome (``experiments.call_flow``), whether the call succeeds or raises a
    ``RoutingError``."""
    unit_id = unit_id or _request_unit_id()
    route = await _aroute(unit_id=unit_id, experiment=experiment, kind=kind)

    async def run(*, strategy: str, router_params: dict | None) -> dict[str, Any]:
        return _annotate(await call(strategy, router_params), route)

    request = CallRequest(
        kind=kind, source="sdk", unit_id=unit_id, task_type=task_type, payload=request_payload
    )
    outcome, _ = await routed_call_run(request=request, route=route, run=run, record=_arecord)
    return outcome.result  # the engine's own dict (callers may keep and mutate it)


class SmartCouncil:
    """`evaluate_script` with smart routing (or the arm an experiment assigns)."""

    async def evaluate_script(
        self,
        script: str,
        niche: str = "general",
        *,
        unit_id: str | None = None,
        experiment: str | None = None,
    ) -> dict[str, Any]:
        return await _routed_call(
            kind="evaluate",
            unit_id=unit_id,
            experiment=experiment,
            task_type="analysis",
            request_payload={"script": script, "niche": niche},
            call=lambda strategy, router_params: runtime.run_evaluate(
                script=script, niche=niche, strategy=strategy, router_params=router_params
            ),
        )


class SmartExecutor:
    """`execute(text=..., task_type=...)` -> {"response", "model", "provider", "_routing_metadata"}."""

    async def execute(
        self,
        text: str | None = None,
        task_type: str = "analysis",
        *,
        messages: list[dict] | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        unit_id: str | None = None,
        experiment: str | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": text, "task_type": task_type}
        for name, value in (
            ("messages", messages),
            ("model", model),
            ("max_tokens", max_tokens),
            ("temperature", temperature),
        ):
            if value is not None:
                payload[name] = value
        return await _routed_call(
            kind="execute",
            unit_id=unit_id,
            experiment=experiment,
            task_type=task_type,
            request_payload=payload,
            call=lambda strategy, router_params: runtime.run_execute(
                text=text,
                messages=messages,
                task_type=task_type,
                strategy=strategy,
                router_params=router_params,
                model=model,
                max_tokens=max_tokens,
                temperature=temperature,
            ),
        )


council = OriginalCouncil()
smart_council = SmartCouncil()
smart_executor = SmartExecutor()
