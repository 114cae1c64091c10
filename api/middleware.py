"""Refuse oversized API bodies before they are read, and stamp when a request arrived.

A ``Content-Length`` above ``API_MAX_BODY_BYTES`` is answered 413 at once (in the API's
error shape); a chunked body without a length is still capped, when it is read, by
``DATA_UPLOAD_MAX_MEMORY_SIZE`` and answered 413 by the API's error handlers. Async-capable,
so it adds no thread hop under ASGI.
"""

from __future__ import annotations

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.errors import (
    ApiError,
    BadRequest,
    PayloadTooLarge,
    body_too_large_message,
    openai_error_body,
    routing_error_body,
)

API_PREFIXES = ("/api/", "/v1/")


def content_length_error(raw_length: str) -> ApiError | None:
    """The error for a ``Content-Length`` header value: not a byte count (400) or over
    ``API_MAX_BODY_BYTES`` (413); None when the body may be read. Shared with ``api.asgi``."""
    if not raw_length:
        return None
    try:
        length = int(raw_length)
        if length < 0:
            raise ValueError
    except ValueError:
        return BadRequest(f"Content-Length {raw_length!r} is not a byte count.")
    limit = settings.API_MAX_BODY_BYTES
    if length <= limit:
        return None
    return PayloadTooLarge(body_too_large_message(limit))


def _refusal(request: HttpRequest) -> HttpResponse | None:
    if not request.path.startswith(API_PREFIXES):
        return None
    err = content_length_error(request.META.get("CONTENT_LENGTH") or "")
    if err is None:
        return None
    render = openai_error_body if request.path.startswith("/v1/") else routing_error_body
    return JsonResponse(render(err, None), status=err.status_code)


class ApiBodyLimitMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        request.router_started_at = time.perf_counter()
        return _refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest):
        request.router_started_at = time.perf_counter()
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        return await self.get_response(request)
