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
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI

from api.auth import ApiKeyAuth, write_auth
from api.errors import BadRequest, ServiceUnavailable, install_error_handlers, openai_error_body
from api.recording import record_call_deferred
from api.schemas import ChatCompletionIn, ModelListOut

ROUTER_MODEL = "router"
STREAM_CHUNK_CHARS = 48

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


def _started_at(request: HttpRequest) -> float:
    """When the request entered Django (stamped by the body-size middleware)."""
    return getattr(request, "router_started_at", None) or time.perf_counter()


def _flatten_messages(payload: ChatCompletionIn) -> list[dict[str, str]]:
    messages = [{"role": message.role, "content": message.text()} for message in payload.messages]
    if not any(message["content"].strip() for message in messages):
        raise BadRequest(
            "The messages contain no text: send at least one message with text content.",
            param="messages",
        )
    return messages


def _router_headers(result: dict[str, Any], overhead_ms: float) -> dict[str, str]:
    meta = result.get("_routing_metadata") or {}
    return {
        "x-router-model": str(result.get("model") or meta.get("model") or ""),
        "x-router-tier": str(meta.get("tier") or ""),
        "x-router-cost-usd": f"{float(meta.get('cost') or 0.0):.10f}",
        "x-router-escalated": "true" if meta.get("escalated") else "false",
        "x-router-overhead-ms": f"{max(0.0, overhead_ms):.3f}",
    }


def _usage(result: dict[str, Any]) -> dict[str, int]:
    meta = result.get("_routing_metadata") or {}
    prompt_tokens = int(meta.get("input_tokens") or 0)
    completion_tokens = int(meta.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion(completion_id: str, created: int, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.get("model") or "",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.get("response") or ""},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(result),
        "system_fingerprint": None,
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def _stream(completion_id: str, created: int, result: dict[str, Any]) -> AsyncIterator[bytes]:
    """The answer as chat.completion.chunk events, usage in the final chunk, then [DONE]."""
    model = result.get("model") or ""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return _sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
        )

    yield chunk(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    text = result.get("response") or ""
    for start in range(0, len(text), STREAM_CHUNK_CHARS):
        piece = text[start : start + STREAM_CHUNK_CHARS]
        yield chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    yield chunk([], usage=_usage(result))
    yield b"data: [DONE]\n\n"


async def _record(
    *,
    completion_id: str,
    payload: ChatCompletionIn,
    messages: list[dict[str, str]],
    key_name: str,
    result: dict[str, Any] | None,
    error: Exception | None,
) -> None:
    await record_call_deferred(
        kind="chat",
        source="openai",
        unit_id=payload.user or "",
        task_type=payload.task_type or "",
        request_payload={
            "model": payload.model,
            "messages": messages,
            "max_tokens": payload.max_completion_tokens or payload.max_tokens,
            "temperature": payload.temperature,
            "stream": bool(payload.stream),
            "api_key": key_name,
        },
        result=result,
        error=error,
        idempotency_key=f"openai:{completion_id}",
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
    from routing_platform.engine.errors import RoutingError
    from routing_platform.runtime import run_execute

    started = _started_at(request)
    messages = _flatten_messages(payload)
    concrete_model = None if payload.model == ROUTER_MODEL else payload.model
    completion_id = _completion_id()
    created = int(time.time())
    try:
        result = await run_execute(
            messages=messages,
            task_type=payload.task_type or "analysis",
            model=concrete_model,
            max_tokens=payload.max_completion_tokens or payload.max_tokens,
            temperature=payload.temperature,
        )
    except RoutingError as err:
        await _record(
            completion_id=completion_id,
            payload=payload,
            messages=messages,
            key_name=request.auth.name,
            result=None,
            error=err,
        )
        raise
    await _record(
        completion_id=completion_id,
        payload=payload,
        messages=messages,
        key_name=request.auth.name,
        result=result,
        error=None,
    )
    meta = result.get("_routing_metadata") or {}
    overhead_ms = (time.perf_counter() - started) * 1000.0 - float(meta.get("latency_ms") or 0.0)
    headers = _router_headers(result, overhead_ms)
    if payload.stream:
        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            _stream(completion_id, created, result), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    else:
        response = HttpResponse(
            json.dumps(_completion(completion_id, created, result), separators=(",", ":")),
            content_type="application/json",
        )
    for name, value in headers.items():
        response[name] = value
    return response


def available_models() -> list[dict[str, Any]]:
    """'router' first, then every model of the catalog (including OPENAI_COMPATIBLE_MODELS)."""
    from django.conf import settings

    from routing_platform.engine.catalog import Catalog, parse_compatible_models

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
