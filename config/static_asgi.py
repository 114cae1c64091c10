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

from whitenoise.middleware import WhiteNoiseMiddleware


def _request_headers(scope: dict) -> dict[str, str]:
    """The request's headers as WhiteNoise reads them (WSGI/``META`` names)."""
    return {
        "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
        for name, value in scope["headers"]
    }


def _read_and_close(handle) -> bytes:
    try:
        return handle.read()
    finally:
        handle.close()


class StaticFilesASGI:
    """ASGI wrapper: serves WhiteNoise's static files itself, passes the rest to ``app``."""

    def __init__(self, app) -> None:
        self.app = app
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)

    def find(self, path: str):
        """WhiteNoise's file for ``path`` (as its middleware looks it up), or None."""
        if not path.startswith(self.whitenoise.static_prefix):
            return None
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path)
        return self.whitenoise.files.get(path)

    async def __call__(self, scope, receive, send) -> None:
        static_file = self.find(scope["path"]) if scope["type"] == "http" else None
        if static_file is None:
            await self.app(scope, receive, send)
            return
        response = static_file.get_response(scope["method"], _request_headers(scope))
        body = (
            b""
            if response.file is None
            else await asyncio.to_thread(_read_and_close, response.file)
        )
        await send(
            {
                "type": "http.response.start",
                "status": int(response.status),
                "headers": [
                    (key.lower().encode("latin-1"), str(value).encode("latin-1"))
                    for key, value in response.headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def with_static_files(app):
    """``app`` with static files answered ahead of it (see the module docstring)."""
    return StaticFilesASGI(app)
