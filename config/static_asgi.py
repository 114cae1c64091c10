"""Static files under ASGI, answered before Django: WhiteNoise's files, headers and encodings.

WhiteNoise's Django middleware is synchronous. Under ASGI every static request therefore
took the whole classic middleware chain through ``sync_to_async``, and Django consumed its
``FileResponse`` (a synchronous iterator) in the one thread that also runs the views, so
the ten files of an admin page queued behind each other and behind the page itself: on
the demo, about 0.2 s from request to first byte for each, most of a cold dashboard's
transfer time (see docs/decisions/0016-*).

``with_static_files`` wraps the ASGI application: a request under ``STATIC_URL`` for a
file WhiteNoise knows is answered here, with exactly what the middleware would send
(``StaticFile.get_response``: hashed-name cache headers, gzip/brotli negotiation,
conditional and range requests), the file read in a worker thread; anything else goes
on to Django untouched. The middleware stays in ``MIDDLEWARE`` for WSGI and the test
client.
"""

from __future__ import annotations

import asyncio
import io

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from whitenoise.middleware import WhiteNoiseMiddleware


def _path_info(scope: dict) -> str:
    """The path below the app's mount point, as Django's ``request.path_info`` has it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _read_and_close(handle) -> bytes:
    try:
        return handle.read()
    finally:
        handle.close()


class StaticFilesASGI:
    """ASGI wrapper: serves WhiteNoise's static files itself, passes the rest to ``app``.

    ``SecurityMiddleware`` (first in ``MIDDLEWARE``, so it saw static files before) still
    applies: its HTTPS redirect and its headers (nosniff, referrer policy, HSTS...)."""

    def __init__(self, app) -> None:
        self.app = app
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        # Only its process_request / process_response are called (as ``api.asgi`` does).
        self.security = SecurityMiddleware(get_response=app)

    def find(self, path_info: str):
        """WhiteNoise's file for ``path_info`` (as its middleware looks it up), or None."""
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path_info)
        return self.whitenoise.files.get(path_info)

    async def __call__(self, scope, receive, send) -> None:
        static_file = request = None
        if scope["type"] == "http" and _path_info(scope).startswith(self.whitenoise.static_prefix):
            request = ASGIRequest(scope, io.BytesIO())
            static_file = self.find(request.path_info)
        if static_file is None:
            await self.app(scope, receive, send)
            return
        response = self.security.process_request(request) or await self._file_response(
            static_file, request
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (key.lower().encode("latin-1"), value.encode("latin-1"))
                    for key, value in self.security.process_response(request, response).items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    async def _file_response(self, static_file, request) -> HttpResponse:
        """WhiteNoise's answer (status, headers, file read in a worker thread) as a response."""
        answer = static_file.get_response(request.method, request.META)
        body = b"" if answer.file is None else await asyncio.to_thread(_read_and_close, answer.file)
        response = HttpResponse(body, status=int(answer.status))
        del response["Content-Type"]  # WhiteNoise's own headers say it, or nothing should
        for key, value in answer.headers:
            response[key] = value
        return response


def with_static_files(app):
    """``app`` with static files answered ahead of it (see the module docstring)."""
    return StaticFilesASGI(app)
