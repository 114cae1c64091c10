"""A lean ASGI path for the HTTP API: the same Django project, a shorter middleware chain.

Under ASGI every classic Django middleware (``MiddlewareMixin``: security, sessions, CSRF,
auth, messages, clickjacking, axes) runs its ``process_request`` / ``process_response`` /
``process_view`` through ``sync_to_async``: a dozen thread hops per request, which alone
cost the OpenAI-compatible endpoint several milliseconds (more on a busy machine). The API
needs none of them (bearer keys, no cookies, no sessions, no HTML), so requests under
``/v1/``, ``/api/`` and ``/health`` go to a second Django handler whose chain is
``API_MIDDLEWARE``: async-native middleware only. Everything else (the admin, the
dashboard, django-rq) keeps the full ``settings.MIDDLEWARE`` chain.

``ApiSecurityMiddleware`` keeps what ``SecurityMiddleware`` does for API responses (HTTPS
redirect, HSTS, nosniff, referrer policy) by calling its pure methods inline.

``POST /v1/chat/completions``, the latency-budgeted data plane, skips Django's request and
response machinery altogether (``LeanChatCompletions``, a raw ASGI handler, as LiteLLM
separates its proxy's data plane): the same body limit, bearer auth, rate limit, body
model, view logic, recording hand-off, errors and headers, through the helpers the ninja
view uses, at about a third of the CPU. Requests it does not cover (no Content-Length, an
HTTPS redirect to answer) go to the Django path as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix

from api.auth import authorize
from api.errors import ApiError, classify, openai_error_body
from api.idempotency import IdempotencyGuard, read_body
from api.lifespan import lifespan
from api.middleware import content_length_error
from api.openai_api import chat_completion_answer, chat_payload_parse

API_PATH_PREFIXES = ("/v1/", "/api/", "/health")
CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
SHARED_THREAD_PREFIXES = ("/v1/",)

API_MIDDLEWARE = [
    "api.middleware.ApiBodyLimitMiddleware",
    "api.asgi.ApiSecurityMiddleware",
]


class ApiSecurityMiddleware:
    """Django's SecurityMiddleware logic, called inline (it does no I/O) instead of in a thread."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.security = SecurityMiddleware(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest):
        redirect = self.security.process_request(request)
        if redirect is not None:
            return redirect
        response = await self.get_response(request)
        return self.security.process_response(request, response)


class ApiASGIHandler(ASGIHandler):
    """Django's ASGI handler with ``API_MIDDLEWARE`` instead of ``settings.MIDDLEWARE``.

    On the OpenAI-compatible paths it also skips the per-request ``ThreadSensitiveContext``,
    which starts (and stops) a fresh thread for every request: those requests run
    thread-sensitive code (Django's connection signals, a key-cache miss) on asgiref's one
    shared sync thread instead. They do almost no ORM work, so nothing long can queue
    there. The routing API, whose dashboard and experiment reads can be slow, keeps a
    thread per request.
    """

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SHARED_THREAD_PREFIXES):
            await self.handle_without_thread_hops(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def handle_without_thread_hops(self, scope, receive, send) -> None:
        """``ASGIHandler.handle`` without its two ``sync_to_async`` hops.

        Django sends ``request_started`` (before the view) and closes the response (which
        sends ``request_finished``) through ``sync_to_async``; their receivers only reset
        per-thread state (queries log, database connections, caches, urlconf) and the
        event loop's thread holds no database connection, so they run inline here. On a
        busy machine each hop waits for a thread to be scheduled, milliseconds on the
        critical path. The views of these paths refresh the connections of the thread
        their ORM work runs in themselves (``api.auth``, ``api.recording``).
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return
        response = None
        try:
            response = await self.run_get_response(request)
            if response.streaming:  # a gateway stream: stop it if the client goes away
                await until_disconnect(self.send_response(response, send), receive)
            else:
                await self.send_response(response, send)
        finally:
            if response is not None:
                response.close()
            else:
                signals.request_finished.send(sender=self.__class__)
            body_file.close()

    def load_middleware(self, is_async: bool = False) -> None:
        full_chain = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full_chain


# --- The lean data plane: POST /v1/chat/completions without Django's request machinery -----

_SECURITY_SETTINGS = (
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
)
_security_headers_cache: dict[tuple, list[tuple[bytes, bytes]]] = {}


class _SchemeOnly:
    """The part of a request ``SecurityMiddleware.process_response`` looks at."""

    def __init__(self, secure: bool) -> None:
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


def security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers Django's ``SecurityMiddleware`` adds to an API response (HSTS on HTTPS,
    nosniff, referrer and opener policies), computed by it once per settings."""
    key = (secure, *(getattr(settings, name, None) for name in _SECURITY_SETTINGS))
    headers = _security_headers_cache.get(key)
    if headers is None:
        response = SecurityMiddleware(lambda request: None).process_response(
            _SchemeOnly(secure), HttpResponse()
        )
        headers = [
            (name.encode("latin-1"), str(value).encode("latin-1"))
            for name, value in response.items()
            if name.lower() != "content-type"
        ]
        _security_headers_cache[key] = headers
    return headers


def _header_map(scope) -> dict[str, str]:
    """Request headers by lower-case name; repeated headers joined with "," (as Django does)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _is_secure(scope, headers: dict[str, str]) -> bool:
    """``HttpRequest.is_secure()``: the scheme, or ``SECURE_PROXY_SSL_HEADER`` when set."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower()
        value = headers.get(name)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


class LeanChatCompletions:
    """``POST /v1/chat/completions`` as a raw ASGI handler, same behaviour as the ninja view.

    In order, as on the Django path: the ``Content-Length`` check (413 / 400 before the
    body is read), the body, the bearer key with the ``write`` scope and its rate limit
    (``api.auth.authorize``), the body model (``chat_payload_parse``: ninja's own), the
    call and its record (``chat_completion_answer``), and any error rendered by
    ``errors.classify`` in OpenAI's shape with the same status, message and headers.
    """

    def accepts(self, scope, headers: dict[str, str]) -> bool:
        """False for what the Django path must answer: a body without Content-Length (capped
        as it is read), or a plain-HTTP request that SECURE_SSL_REDIRECT redirects."""
        if "content-length" not in headers:
            return False
        return not (settings.SECURE_SSL_REDIRECT and not _is_secure(scope, headers))

    async def __call__(self, scope, receive, send, headers: dict[str, str]) -> None:
        started = time.perf_counter()
        refusal = content_length_error(headers["content-length"])
        if refusal is not None:
            # As on the Django path, where the body limit runs outside the security headers.
            await self._send_error(send, refusal, None, [])
            return
        extra = security_headers(_is_secure(scope, headers))
        body = await read_body(receive)
        if body is None:  # the client went away
            return
        try:
            key = await authorize(headers.get("authorization", ""), "write")
            payload = chat_payload_parse(body)
            answer = await chat_completion_answer(payload, key_name=key.name, started=started)
        except Exception as exc:  # rendered like the ninja API's handlers do
            err, details = classify(exc)
            await self._send_error(send, err, details, extra)
            return
        response_headers = [(b"content-type", answer.content_type.encode())]
        response_headers += [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in answer.headers.items()
        ]
        response_headers += extra
        if answer.stream is None:
            response_headers.append((b"content-length", str(len(answer.body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await relay_stream(answer.stream, send, receive)

    @staticmethod
    async def _send_error(send, err: ApiError, details, extra) -> None:
        body = json.dumps(openai_error_body(err, details), cls=DjangoJSONEncoder).encode()
        headers = [(b"content-type", b"application/json")]
        headers += [
            (name.encode("latin-1"), str(value).encode("latin-1"))
            for name, value in err.headers.items()
        ]
        headers += extra
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": err.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def until_disconnect(sending: Awaitable[None], receive) -> None:
    """Run ``sending`` (a response being sent) unless the client disconnects first; then
    it is cancelled, which closes a streamed answer where it stands (a gateway stream
    closes its upstream and records the call, marked client_disconnected)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    sender = asyncio.ensure_future(sending)
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait((sender, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watcher, sender):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def relay_stream(stream, send, receive) -> None:
    """Send a streamed answer's chunks as they come, until the client disconnects."""

    async def pump() -> None:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    try:
        await until_disconnect(pump(), receive)
    finally:
        await stream.aclose()


class ApiDispatcher:
    """Send API paths to the lean handler and everything else to Django's full one."""

    def __init__(self, django_application) -> None:
        self.django_application = django_application
        self.api_application = ApiASGIHandler()
        self.chat_completions = LeanChatCompletions()
        # Idempotency-Key (api.idempotency) around both API paths, lean and Django.
        self.api_with_idempotency = IdempotencyGuard(self.dispatch_api)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # start-up checks; shutdown flushes pending records
            await lifespan(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith(API_PATH_PREFIXES):
            await self.api_with_idempotency(scope, receive, send)
        else:
            await self.django_application(scope, receive, send)

    async def dispatch_api(self, scope, receive, send) -> None:
        if scope["path"] == CHAT_COMPLETIONS_PATH and scope["method"] == "POST":
            headers = _header_map(scope)
            if self.chat_completions.accepts(scope, headers):
                await self.chat_completions(scope, receive, send, headers)
                return
        await self.api_application(scope, receive, send)


def with_lean_api_handler(django_application) -> ApiDispatcher:
    return ApiDispatcher(django_application)
