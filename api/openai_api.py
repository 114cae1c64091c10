"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client works by changing its base URL. ``model: "router"`` routes smartly (tier
by complexity, escalation on low confidence); a concrete model name passes straight
through. Answers are OpenAI's shapes (completion, chunk stream, error) plus ``x-router-*``
headers saying which model answered, its tier, cost, escalation and our overhead.

This is the latency-critical path: auth is cached in-process, the rate limit is one Redis
round trip, and the call's record is handed to Redis for the workers (``api.recording``).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pydantic
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationErrorContext

from api.arms import arm_route
from api.auth import ApiKeyAuth, write_auth
from api.errors import (
    BadRequest,
    ServiceUnavailable,
    classify,
    install_error_handlers,
    openai_error_body,
)
from api.gateway import STREAMING_HEADER, OpenAIRenderer, chat_options, flat_messages
from api.quality_api import call_id_header
from api.recording import call_record_deferred, ensure_recordable
from api.schemas import ChatCompletionIn, ModelListOut
from experiments.call_flow import CallRecord, CallRequest, outcome_or_error, routed_call_run
from experiments.routes import ArmRoute
from routing_platform.engine.catalog import Catalog, parse_compatible_models
from routing_platform.engine.errors import RoutingError
from routing_platform.engine.outcome import CallOutcome, RecordedError
from routing_platform.runtime import run_execute, run_stream, streams_through

ROUTER_MODEL = "router"
_NOT_HEADER_SAFE = re.compile(r"[^\x20-\x7e]")

# Completion ids: a random per-process prefix and a counter (unique without a syscall per
# call; uuid4 reads the kernel's random pool, which is slow on some virtual machines).
_ID_PREFIX = os.urandom(6).hex()
_id_counter = itertools.count(1)


def _completion_id() -> str:
    return f"chatcmpl-{_ID_PREFIX}{os.getpid():x}{next(_id_counter):08x}"


openai_api = NinjaAPI(
    title="OpenAI-compatible API",
    version="1",
    description=(
        'Point any OpenAI client at this base URL. `model: "router"` routes each call to the '
        "cheapest model likely to answer it well; a concrete model name passes through."
    ),
    urls_namespace="openai_api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_error_handlers(openai_api, openai_error_body)


def started_at(request: HttpRequest) -> float:
    """When the request entered Django (stamped by the body-size middleware)."""
    return getattr(request, "router_started_at", None) or time.perf_counter()


def _flatten_messages(payload: ChatCompletionIn) -> list[dict[str, str]]:
    messages = flat_messages(payload)
    if not any(message["content"].strip() for message in messages):
        raise BadRequest(
            "The messages contain no text: send at least one message with text content.",
            param="messages",
        )
    return messages


def _router_headers(outcome: CallOutcome, overhead_ms: float) -> dict[str, str]:
    return {
        # The model name comes from the upstream's answer: printable ASCII only in a header.
        "x-router-model": _NOT_HEADER_SAFE.sub("", outcome.model),
        "x-router-tier": outcome.tier,
        "x-router-cost-usd": f"{outcome.cost_usd:.10f}",
        "x-router-escalated": "true" if outcome.escalated else "false",
        "x-router-overhead-ms": f"{max(0.0, overhead_ms):.3f}",
    }


def _call_request(
    *,
    completion_id: str,
    payload: ChatCompletionIn,
    messages: list[dict[str, str]],
    key_name: str,
    prefix: str = "openai",
) -> CallRequest:
    """What is recorded of a chat completion (its key: the completion id)."""
    return CallRequest(
        kind="chat",
        source="openai",
        unit_id=payload.user or "",
        task_type=payload.task_type or "",
        payload={
            "model": payload.model,
            "messages": messages,
            "max_tokens": payload.max_completion_tokens or payload.max_tokens,
            "temperature": payload.temperature,
            "stream": bool(payload.stream),
            "api_key": key_name,
        },
        idempotency_key=f"{prefix}:{completion_id}",
    )


async def _record_stream(
    *,
    request: CallRequest,
    route: ArmRoute | None,
    result: dict[str, Any] | None,
    error: BaseException | RecordedError | None,
) -> None:
    """The record step of a relayed stream, when it ends (the same as a buffered call's)."""
    outcome, recorded_error = outcome_or_error(result, error)
    await call_record_deferred(CallRecord(request, route, outcome, recorded_error))


@dataclass(frozen=True)
class ChatAnswer:
    """A chat completion's HTTP answer: extra headers, and a JSON body or an SSE stream."""

    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    content_type: str = "application/json"


_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _engine_fields(
    payload: ChatCompletionIn, messages: list[dict[str, str]], options: Any
) -> dict[str, Any]:
    """The call as the engine takes it, streamed (``run_stream``) or not (``run_execute``)."""
    return {
        "messages": messages,
        "task_type": payload.task_type or "analysis",
        "model": None if payload.model == ROUTER_MODEL else payload.model,
        "max_tokens": payload.max_completion_tokens or payload.max_tokens,
        "temperature": payload.temperature,
        "options": options,
    }


async def _passthrough_answer(
    payload: ChatCompletionIn,
    messages: list[dict[str, str]],
    options: Any,
    *,
    record: Callable[..., Awaitable[None]],
    completion_id: str,
    created: int,
    render: Any,
) -> ChatAnswer:
    """Open the upstream's stream and relay it (the record is written when it ends)."""
    try:
        run = await run_stream(**_engine_fields(payload, messages, options))
    except RoutingError as err:
        await record(result=None, error=err)
        raise

    def error_body(err: Exception) -> dict[str, Any]:
        api_error, details = classify(err)
        return render.error_body(api_error, details)

    return ChatAnswer(
        headers={
            **_STREAM_HEADERS,
            STREAMING_HEADER: "passthrough" if run.relays_tokens else "buffered",
            "x-router-model": run.spec.name,
            "x-router-tier": run.spec.tier,
            "x-router-escalated": "false",
            **call_id_header(completion_id),
        },
        stream=render.relay(completion_id, created, run, record, error_body),
        content_type="text/event-stream",
    )


async def chat_completion_answer(
    payload: ChatCompletionIn, *, key_name: str, started: float, render: Any = None
) -> ChatAnswer:
    """Route (or pass through) one chat completion, hand its record to the workers, and say
    what to answer. Raises ``ApiError`` / ``RoutingError``, which each caller renders in
    OpenAI's error shape. Shared by the ninja view and the lean path of ``api.asgi``, and
    by the Anthropic Messages endpoint, whose ``render`` answers in Anthropic's shapes."""
    render = render or OpenAIRenderer(payload)
    messages = _flatten_messages(payload)
    options = chat_options(payload)
    await ensure_recordable()  # 503 before the upstream is paid for, if records are not safe
    concrete_model = None if payload.model == ROUTER_MODEL else payload.model
    completion_id = _completion_id()
    created = int(time.time())
    route = await arm_route(experiment_key=payload.experiment, unit_id=payload.user, param="user")
    request = _call_request(
        completion_id=completion_id,
        payload=payload,
        messages=messages,
        key_name=key_name,
        prefix=render.record_prefix,
    )
    # An experiment's arm decides how the call runs (strategy, router parameters), so a
    # call in an experiment is answered by the router and buffered, never passed through.
    if payload.stream and route is None and streams_through(concrete_model):
        return await _passthrough_answer(
            payload,
            messages,
            options,
            record=partial(_record_stream, request=request, route=route),
            completion_id=completion_id,
            created=created,
            render=render,
        )
    outcome, _ = await routed_call_run(
        request=request,
        route=route,
        run=partial(run_execute, **_engine_fields(payload, messages, options)),
        record=call_record_deferred,
    )
    result = outcome.result
    overhead_ms = (time.perf_counter() - started) * 1000.0 - outcome.latency_ms
    headers = {**_router_headers(outcome, overhead_ms), **call_id_header(completion_id)}
    if payload.stream:
        return ChatAnswer(
            headers={
                **_STREAM_HEADERS,
                STREAMING_HEADER: "buffered",
                **headers,
            },
            stream=render.buffered(completion_id, created, result),
            content_type="text/event-stream",
        )
    return ChatAnswer(
        headers=headers,
        body=render.body(completion_id, created, result),
    )


@openai_api.post(
    "/chat/completions",
    auth=write_auth,
    summary="Create a chat completion (OpenAI-compatible)",
    response={200: dict},
    openapi_extra={
        "responses": {
            "400": {"description": "Invalid request (OpenAI error shape)."},
            "401": {"description": "Missing or invalid API key."},
            "404": {"description": "Unknown model."},
            "413": {"description": "Request body too large."},
            "429": {"description": "Rate limit exceeded; see Retry-After."},
        }
    },
)
async def chat_completions(request: HttpRequest, payload: ChatCompletionIn):
    answer = await chat_completion_answer(
        payload, key_name=request.auth.name, started=started_at(request)
    )
    if answer.stream is not None:
        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            answer.stream, content_type=answer.content_type
        )
    else:
        response = HttpResponse(answer.body, content_type=answer.content_type)
    for name, value in answer.headers.items():
        response[name] = value
    return response


class _RawBody:
    """What ninja's body parsing reads of a request: its bytes."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


_chat_body_model = None


def chat_payload_parse(body: bytes) -> ChatCompletionIn:
    """Parse and validate a chat completion request body exactly as the ninja view does
    (the view's own body model: same JSON parser, field locations and messages), raising
    ninja's ``HttpError`` / ``ValidationError`` for ``errors.classify``. For ``api.asgi``."""
    global _chat_body_model
    try:  # the common case, in one pass of pydantic's own JSON parser (same model, same rules)
        return ChatCompletionIn.model_validate_json(body)
    except (pydantic.ValidationError, ValueError):
        pass  # ninja's path below names the error exactly as the view does
    if _chat_body_model is None:
        _chat_body_model = next(
            operation.models[0]
            for path_view in openai_api.default_router.path_operations.values()
            for operation in path_view.operations
            if operation.view_func is chat_completions
        )
    model = _chat_body_model
    try:
        values = dict(model.resolve(_RawBody(body), openai_api, {}))
    except pydantic.ValidationError as err:
        raise openai_api.validation_error_from_error_contexts(
            [ValidationErrorContext(pydantic_validation_error=err, model=model)]
        ) from None
    return values["payload"]


def available_models() -> list[dict[str, Any]]:
    """'router' first, then every model of the catalog (including OPENAI_COMPATIBLE_MODELS)."""
    catalog = Catalog()
    if settings.OPENAI_COMPATIBLE_BASE_URL:
        try:
            catalog = catalog.with_models(
                parse_compatible_models(settings.OPENAI_COMPATIBLE_MODELS)
            )
        except ValueError as err:  # a malformed name@tier entry: the operator's to fix
            raise ServiceUnavailable(f"OPENAI_COMPATIBLE_MODELS is malformed: {err}") from None
    created = 1_700_000_000
    models = [{"id": ROUTER_MODEL, "object": "model", "created": created, "owned_by": "router"}]
    models += [
        {"id": spec.name, "object": "model", "created": created, "owned_by": spec.provider}
        for spec in catalog
    ]
    return models


@openai_api.get("/models", auth=ApiKeyAuth("read"), response=ModelListOut, summary="List models")
async def list_models(request: HttpRequest):
    return {"object": "list", "data": available_models()}
