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
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpRequest
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix

API_PATH_PREFIXES = ("/v1/", "/api/", "/health")
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


class ApiDispatcher:
    """Send API paths to the lean handler and everything else to Django's full one."""

    def __init__(self, django_application) -> None:
        self.django_application = django_application
        self.api_application = ApiASGIHandler()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PATH_PREFIXES):
            await self.api_application(scope, receive, send)
        else:
            await self.django_application(scope, receive, send)


def with_lean_api_handler(django_application) -> ApiDispatcher:
    return ApiDispatcher(django_application)
