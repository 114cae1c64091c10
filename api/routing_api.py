"""The routing API of the user's guide, mounted at /api/v1/routing/ (OpenAPI at ./openapi.json).

Views are thin: parse (ninja schemas), call one runtime function, service or selector,
report. Engine calls are awaited on the server's event loop; ORM work runs through
``sync_to_async``.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field

from api.arms import (
    arm_route,
    experiment_or_404,
    unit_required,
)
from api.auth import read_auth, write_auth
from api.errors import (
    BadRequest,
    NotFound,
    ServiceUnavailable,
    install_error_handlers,
    routing_error_body,
)
from api.health import health_report
from api.quality_api import CallIdNinjaAPI
from api.quality_api import router as quality_router
from api.redis_client import redis_ping
from api.schemas import (
    KEY_PATTERN,
    EvaluateIn,
    ExecuteIn,
    ExperimentIn,
    JobOut,
    RampIn,
    RoutedRequestIn,
)
from experiments.call_flow import CallRequest, EngineRun, routed_call_run
from experiments.metrics import MetricsInputError
from experiments.reports import experiment_report, report_export_json
from experiments.selectors import experiment_list, routed_call_get
from experiments.services import (
    QueueUnavailableError,
    experiment_start,
    routed_call_enqueue,
)
from experiments.services import experiment_create as create_service
from experiments.services import experiment_ramp as ramp_service
from experiments.services.routed_calls import routed_call_arecord
from routing_platform.routing.analytics import analytics as analytics_
from routing_platform.routing.dashboard import router_dashboard
from routing_platform.runtime import run_evaluate, run_execute

router = Router(tags=["routing"])

JOB_ID_MAX = 2**63 - 1
QUEUE_DOWN = (
    "The job queue (Redis) is unreachable, so the call was not queued: retry later, or send "
    'it without "async" to run it now.'
)

ERROR_RESPONSES = {
    "responses": {
        "400": {"description": "Invalid request; `message` says what to fix."},
        "401": {"description": "Missing or invalid API key."},
        "403": {"description": "The key lacks the scope."},
        "413": {"description": "Request body too large."},
        "429": {"description": "Rate limit exceeded; see Retry-After."},
    }
}


# --- Helpers -------------------------------------------------------------------------------


async def _enqueue(*, kind: str, payload: RoutedRequestIn, request_payload: dict[str, Any]):
    unit_required(experiment_key=payload.experiment, unit_id=payload.unit_id, param="unit_id")
    reachable, _ = await redis_ping()
    if not reachable:
        raise ServiceUnavailable(QUEUE_DOWN)
    try:
        call = await sync_to_async(routed_call_enqueue)(
            kind=kind,
            request_payload=request_payload,
            task_type=request_payload.get("task_type", ""),
            unit_id=payload.unit_id or "",
            experiment_key=payload.experiment,
            source="api",
        )
    except QueueUnavailableError as err:
        raise ServiceUnavailable(f"{QUEUE_DOWN} ({err})") from None
    return Status(
        202,
        {
            "job_id": call.pk,
            "status": call.status,
            "status_url": f"/api/v1/routing/jobs/{call.pk}",
        },
    )


async def _run_routed(
    *, kind: str, payload: RoutedRequestIn, request_payload: dict[str, Any], run: EngineRun
):
    """Route (experiment arm), run the engine, record the call, answer the result + call id."""
    route = await arm_route(
        experiment_key=payload.experiment, unit_id=payload.unit_id, param="unit_id"
    )
    request = CallRequest(
        kind=kind,
        source="api",
        unit_id=payload.unit_id or "",
        task_type=request_payload.get("task_type", ""),
        payload=request_payload,
    )
    outcome, call = await routed_call_run(
        request=request, route=route, run=run, record=routed_call_arecord
    )
    body = dict(outcome.result)
    body["call_id"] = call.pk
    if route is not None:
        body["experiment"] = {"key": route.experiment_key, "arm": route.arm_key}
    return body


async def _answer(
    request: HttpRequest,
    *,
    kind: str,
    payload: RoutedRequestIn,
    fields: dict[str, Any],
    run: EngineRun,
):
    """Queue the call (``run_async``: 202 and a job) or route, run and record it now.
    ``fields`` are the request as recorded, with the caller's key name added (whose call
    it is, for feedback: ``api.quality_api``)."""
    request_payload = {**fields, "api_key": request.auth.name}
    if payload.run_async:
        return await _enqueue(kind=kind, payload=payload, request_payload=request_payload)
    return await _run_routed(kind=kind, payload=payload, request_payload=request_payload, run=run)


# --- Health --------------------------------------------------------------------------------


@router.get(
    "/health",
    auth=None,
    response={200: dict, 503: dict},
    summary="Health of the database, Redis and the workers (no key needed)",
)
async def health(request: HttpRequest):
    code, body = await health_report()
    return Status(code, body)


# --- Calls ---------------------------------------------------------------------------------


@router.post(
    "/execute",
    auth=write_auth,
    response={200: dict, 202: JobOut},
    summary="Route and run one prompt (smart_executor.execute)",
    openapi_extra=ERROR_RESPONSES,
)
async def execute(request: HttpRequest, payload: ExecuteIn):
    fields = {
        "text": payload.text,
        "task_type": payload.task_type,
        "max_tokens": payload.max_tokens,
        "temperature": payload.temperature,
    }

    async def run(*, strategy: str, router_params: dict | None):
        return await run_execute(
            text=payload.text,
            task_type=payload.task_type,
            strategy=strategy,
            router_params=router_params,
            max_tokens=payload.max_tokens,
            temperature=payload.temperature,
        )

    return await _answer(request, kind="execute", payload=payload, fields=fields, run=run)


@router.post(
    "/evaluate",
    auth=write_auth,
    response={200: dict, 202: JobOut},
    summary="Evaluate a script (smart_council.evaluate_script)",
    openapi_extra=ERROR_RESPONSES,
)
async def evaluate(request: HttpRequest, payload: EvaluateIn):
    fields = {"script": payload.script, "niche": payload.niche, "task_type": "evaluation"}

    async def run(*, strategy: str, router_params: dict | None):
        return await run_evaluate(
            script=payload.script,
            niche=payload.niche,
            strategy=strategy,
            router_params=router_params,
        )

    return await _answer(request, kind="evaluate", payload=payload, fields=fields, run=run)


def _job_body(call) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": call.pk,
        "kind": call.kind,
        "status": call.status,
        "source": call.source,
        "unit_id": call.unit_id,
        "experiment": call.experiment.key if call.experiment_id else None,
        "arm": call.arm.key if call.arm_id else None,
        "created_at": call.created_at,
        "completed_at": call.completed_at,
        "attempts": call.attempts,
    }
    if call.status == "success":
        body["result"] = call.result
    if call.status == "error":
        body["error"] = {"type": call.error_type, "message": call.error_message}
    return body


@router.get(
    "/jobs/{job_id}",
    auth=read_auth,
    response=dict,
    summary="Status and result of a call (queued with async, or run inline)",
    openapi_extra=ERROR_RESPONSES,
)
async def job(request: HttpRequest, job_id: int = Path(..., ge=1, le=JOB_ID_MAX)):
    def load():
        call = routed_call_get(call_id=job_id)
        if call is None:
            raise NotFound(f"No job (routed call) with id {job_id}.")
        return _job_body(call)

    return await sync_to_async(load)()


# --- Monitoring ----------------------------------------------------------------------------


class WindowQuery(Schema):
    window: str | None = Field(
        None, max_length=16, description="Time window, e.g. 24h, 7d, 30d (default: all time)."
    )
    experiment: str | None = Field(None, pattern=KEY_PATTERN)


def _metrics(read, query: WindowQuery):
    """A dashboard/analytics read of the query's window and experiment; its input errors
    (window, experiment) become 400s."""
    try:
        return read(window=query.window, experiment=query.experiment)
    except MetricsInputError as err:
        raise BadRequest(str(err)) from None


@router.get(
    "/dashboard",
    auth=read_auth,
    response=dict,
    summary="router_dashboard.get_dashboard(): overview, breakdowns, time series, alerts",
    openapi_extra=ERROR_RESPONSES,
)
async def dashboard(request: HttpRequest, query: Query[WindowQuery]):
    return await sync_to_async(_metrics)(router_dashboard.get_dashboard, query)


@router.get(
    "/analytics",
    auth=read_auth,
    response=dict,
    summary="analytics.get_summary(): cost analysis by complexity, tier, model, arm",
    openapi_extra=ERROR_RESPONSES,
)
async def analytics(request: HttpRequest, query: Query[WindowQuery]):
    return await sync_to_async(_metrics)(analytics_.get_summary, query)


# --- Experiments ---------------------------------------------------------------------------


def _experiment_body(experiment) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "status": experiment.status,
        "unit_type": experiment.unit_type,
        "traffic_percentage": experiment.traffic_percentage,
        "ramp_schedule": experiment.ramp_schedule,
        "alpha": experiment.alpha,
        "sequential_testing": experiment.sequential_testing,
        "quality_signal": experiment.quality_signal,
        "created_at": experiment.created_at,
        "started_at": experiment.started_at,
        "ended_at": experiment.ended_at,
        "arms": [
            {
                "key": arm.key,
                "name": arm.name,
                "strategy": arm.strategy,
                "weight": arm.weight,
                "is_control": arm.is_control,
                "router_params": arm.router_params(),
            }
            for arm in experiment.arms.all()
        ],
    }


@router.get(
    "/experiments",
    auth=read_auth,
    response=dict,
    summary="List experiments",
    openapi_extra=ERROR_RESPONSES,
)
async def experiments(request: HttpRequest):
    def load():
        return {"experiments": [_experiment_body(e) for e in experiment_list()]}

    return await sync_to_async(load)()


@router.post(
    "/experiments",
    auth=write_auth,
    response={201: dict},
    summary="Create an experiment (and optionally start it)",
    openapi_extra=ERROR_RESPONSES,
)
async def experiment_create(request: HttpRequest, payload: ExperimentIn):
    def create():
        fields = payload.model_dump(exclude={"key", "name", "arms", "start"})
        arms = [arm.model_dump(exclude_none=True) for arm in payload.arms]
        with transaction.atomic():
            experiment = create_service(key=payload.key, name=payload.name, arms=arms, **fields)
            if payload.start:
                experiment = experiment_start(experiment=experiment)
        return _experiment_body(experiment)

    return Status(201, await sync_to_async(create)())


@router.post(
    "/experiments/{key}/ramp",
    auth=write_auth,
    response=dict,
    summary="Ramp the experiment's traffic percentage (units never change arm)",
    openapi_extra=ERROR_RESPONSES,
)
async def experiment_ramp(
    request: HttpRequest, payload: RampIn, key: str = Path(..., pattern=KEY_PATTERN)
):
    def ramp():
        experiment = ramp_service(
            experiment=experiment_or_404(key), percentage=payload.traffic_percentage
        )
        return _experiment_body(experiment)

    return await sync_to_async(ramp)()


@router.get(
    "/experiments/{key}/results",
    auth=read_auth,
    response=dict,
    summary="Winner report: decision, per-arm statistics, tests, checklist",
    openapi_extra=ERROR_RESPONSES,
)
async def experiment_results(request: HttpRequest, key: str = Path(..., pattern=KEY_PATTERN)):
    def load():
        experiment = experiment_or_404(key)
        return experiment_report(experiment=experiment)

    return await sync_to_async(load)()


@router.get(
    "/experiments/{key}/export",
    auth=read_auth,
    response=dict,
    summary="Versioned JSON export of the experiment's report",
    openapi_extra=ERROR_RESPONSES,
)
async def experiment_export(request: HttpRequest, key: str = Path(..., pattern=KEY_PATTERN)):
    def load() -> str:
        experiment = experiment_or_404(key)
        return report_export_json(experiment=experiment)

    response = HttpResponse(await sync_to_async(load)(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="experiment-{key}.json"'
    return response


routing_api = CallIdNinjaAPI(
    title="Routing API",
    version="1",
    description=(
        "The routing platform's HTTP API: execute and evaluate with smart routing, queue "
        "calls on the workers, read the dashboard and analytics, run A/B experiments. "
        "Send `Authorization: Bearer rk_...` (keys from the admin or "
        "`manage.py routing create-api-key`)."
    ),
    urls_namespace="routing_api",
)
install_error_handlers(routing_api, routing_error_body)
routing_api.add_router("", router)
routing_api.add_router("", quality_router)
