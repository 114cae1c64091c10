"""The static files storage: hashed URLs once collected, plain URLs before (never a 500);
under ASGI, the files answered ahead of Django with WhiteNoise's headers."""

from __future__ import annotations

import gzip
import json

import pytest
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory
from whitenoise.middleware import WhiteNoiseMiddleware

from config.static_asgi import StaticFilesASGI
from config.staticfiles import HashedCompressedStaticFilesStorage


def test_uncollected_files_keep_their_plain_url(tmp_path, settings):
    settings.STATIC_URL = "/static/"
    storage = HashedCompressedStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("dashboard/dashboard.css") == "/static/dashboard/dashboard.css"


def test_collected_files_get_their_hashed_url_even_under_debug(tmp_path, settings):
    """DEBUG would make Django's manifest storage print plain names; this one hashes."""
    settings.DEBUG = True
    (tmp_path / "staticfiles.json").write_text(
        json.dumps(
            {
                "version": "1.1",
                "paths": {"dashboard/plotly.min.js": "dashboard/plotly.min.0123456789ab.js"},
            }
        )
    )
    storage = HashedCompressedStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("dashboard/plotly.min.js") == "/static/dashboard/plotly.min.0123456789ab.js"


# --- Static files under ASGI, ahead of Django (config.static_asgi) ---------------------------

SCRIPT = b"console.log('static');\n" * 200


@pytest.fixture
def static_root(tmp_path, settings):
    """A collected static root with one script and its gzip copy, as WhiteNoise indexes it."""
    root = tmp_path / "collected"
    (root / "app").mkdir(parents=True)
    (root / "app" / "app.0123456789ab.js").write_bytes(SCRIPT)
    (root / "app" / "app.0123456789ab.js.gz").write_bytes(gzip.compress(SCRIPT))
    settings.STATIC_ROOT = str(root)
    settings.STATIC_URL = "/static/"
    settings.WHITENOISE_AUTOREFRESH = False
    settings.WHITENOISE_USE_FINDERS = False
    return root


async def _passed_on(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


async def _call(
    app, path: str, method: str = "GET", root_path: str = "", **headers: str
) -> tuple[int, dict, bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "query_string": b"",
        "server": ("testserver", 80),
        "scheme": "http",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def _middleware_headers(path: str, **meta: str) -> tuple[int, dict]:
    """What Django's chain answered for the same request: SecurityMiddleware around
    WhiteNoise's middleware."""
    request = RequestFactory().get(path, **meta)
    whitenoise = WhiteNoiseMiddleware(get_response=None)
    response = SecurityMiddleware(
        get_response=lambda request: whitenoise.serve(whitenoise.files[path], request)
    )(request)
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}


async def test_asgi_serves_a_static_file_as_the_middleware_would(static_root):
    app = StaticFilesASGI(_passed_on)
    path = "/static/app/app.0123456789ab.js"
    status, headers, body = await _call(app, path, accept_encoding="gzip, br")
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == SCRIPT
    assert int(headers["content-length"]) == len(body)
    expected_status, expected = _middleware_headers(path, HTTP_ACCEPT_ENCODING="gzip, br")
    assert (status, headers) == (expected_status, expected)
    assert headers["x-content-type-options"] == "nosniff"  # SecurityMiddleware's, kept


async def test_asgi_static_keeps_the_https_redirect_and_the_mount_point(static_root, settings):
    path = "/static/app/app.0123456789ab.js"
    mounted = await _call(StaticFilesASGI(_passed_on), "/sub" + path, root_path="/sub")
    assert mounted[0] == 200 and mounted[2] == SCRIPT
    settings.SECURE_SSL_REDIRECT = True
    status, headers, body = await _call(StaticFilesASGI(_passed_on), path)
    assert (status, body) == (301, b"")
    assert headers["location"].startswith("https://") and headers["location"].endswith(path)


async def test_asgi_static_answers_conditional_range_and_head_requests(static_root):
    app = StaticFilesASGI(_passed_on)
    path = "/static/app/app.0123456789ab.js"
    _, headers, _ = await _call(app, path)
    assert "content-encoding" not in headers  # no Accept-Encoding: the plain file
    status, _, body = await _call(app, path, if_none_match=headers["etag"])
    assert (status, body) == (304, b"")
    status, ranged, body = await _call(app, path, range="bytes=0-6")
    assert (status, body, ranged["content-range"]) == (206, SCRIPT[:7], f"bytes 0-6/{len(SCRIPT)}")
    status, head, body = await _call(app, path, method="HEAD")
    assert (status, body, head["content-length"]) == (200, b"", str(len(SCRIPT)))
    status, _, _ = await _call(app, path, method="POST")
    assert status == 405


async def test_asgi_passes_everything_else_to_django(static_root):
    app = StaticFilesASGI(_passed_on)
    for path in ("/admin/", "/static/app/missing.js", "/static/app/"):
        assert await _call(app, path) == (299, {}, b"django")
    forwarded = []

    async def lifespan_app(scope, receive, send):
        forwarded.append(scope["type"])

    await StaticFilesASGI(lifespan_app)({"type": "lifespan"}, None, None)
    assert forwarded == ["lifespan"]
