"""Security: secrets never leave the process; admin logins are rate limited; session forms need
CSRF; production cookies are Secure and HSTS is on.

The secret test sets provider keys, points every provider at a loopback upstream that fails
and echoes back whatever credentials it was sent (the worst upstream there is), then drives
the platform through each output a person or a log collector can see: API error bodies,
recorded calls, logs (the real configured handler), the admin, the CLI and exported reports.
Each output is grepped for every secret.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from config.logging_filters import RedactSecretsFilter, redact
from tests.conftest import REPO_ROOT

SECRETS = {
    "OPENAI_API_KEY": "sk-proj-SECRETMARK-openai-0123456789abcdef",
    "ANTHROPIC_API_KEY": "sk-ant-api03-SECRETMARK-anthropic-0123456789",
    "GEMINI_API_KEY": "AIzaSyD-SECRETMARK-gemini-0123456789abcd",
    # Shaped like nothing we know: only the configured-secret masking can catch it.
    "OPENAI_COMPATIBLE_API_KEY": "plain-SECRETMARK-compatible-77aa88bb",
}
# Any fragment around this marker is a leak too (a truncated key is still a key).
MARKER = "SECRETMARK"


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text] + (
        [MARKER] if MARKER in text else []
    )


def assert_no_secret(outputs: dict[str, str]) -> None:
    leaked = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
    assert leaked == {}, f"secrets found in: {leaked}"


class EchoingUpstream:
    """A loopback provider that answers 500 and echoes the request's path and credentials."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                echoed = {
                    "path": self.path,
                    "authorization": self.headers.get("authorization"),
                    "x-api-key": self.headers.get("x-api-key"),
                    "x-goog-api-key": self.headers.get("x-goog-api-key"),
                }
                body = json.dumps(
                    {"error": {"message": f"internal error for request {echoed}", "type": "server"}}
                ).encode()
                self.send_response(500)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_hasher(settings):
    """Password checks in microseconds: the lock-out tests log in a dozen times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def leaky_providers(settings):
    """Real-provider mode with the test keys, every provider at the echoing upstream."""
    from routing_platform import runtime

    upstream = EchoingUpstream()
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    settings.OPENAI_BASE_URL = f"{upstream.url}/v1"
    settings.ANTHROPIC_BASE_URL = upstream.url
    settings.GEMINI_BASE_URL = f"{upstream.url}/v1beta"
    settings.ROUTER_PROVIDER_MODE = "real"
    settings.ROUTER_MAX_RETRIES = 0
    settings.ROUTER_REQUEST_TIMEOUT_S = 5.0
    runtime.reset()
    yield upstream
    runtime.reset()
    upstream.close()


@contextmanager
def captured_logs():
    """What the configured log handlers write, at DEBUG, into a buffer."""
    root = logging.getLogger()
    handlers = [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING lost its console handler with the redacting filter"
    buffer = io.StringIO()
    previous = [(h, h.setStream(buffer)) for h in handlers]
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.setLevel(level)
        for handler, stream in previous:
            handler.setStream(stream)


def run_cli(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            call_command("routing", *args, stdout=out, stderr=err)
        except CommandError as error:
            err.write(str(error))
        except SystemExit:
            pass
    return out.getvalue() + err.getvalue()


def admin_pages(client: Client) -> dict[str, str]:
    """The admin index, every page it links to, and one change page per registered model."""
    pages = {}
    index = client.get("/admin/")
    assert index.status_code == 200
    pages["/admin/"] = index.content.decode()
    links = set(re.findall(r'href="(/admin/[^"#?]*)"', pages["/admin/"]))
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if not opts.managed:  # admin menu entries without a table (django-rq, the dashboard)
            continue
        first = model_admin.get_queryset(_admin_request(client)).first()
        if first is not None:
            links.add(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk]))
    links.update({"/django-rq/"})
    for link in sorted(links):
        if "logout" in link or "password" in link:
            continue
        response = client.get(link, follow=True)
        assert response.status_code < 500, f"{link} answered {response.status_code}"
        pages[link] = response.content.decode(errors="replace")
    return pages


def _admin_request(client: Client):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.filter(is_superuser=True).first()
    return request


@pytest.mark.redis_server
@pytest.mark.django_db(transaction=True)  # the API may record from another thread/connection
def test_no_secret_in_errors_records_logs_admin_cli_or_exports(
    leaky_providers, real_redis, admin_client, tmp_path
):
    """Provider keys and API tokens appear in no output, even when the upstream echoes them."""
    from api.services import api_key_create
    from experiments.models import RoutedCall
    from routing_platform.engine.errors import RoutingError
    from routing_platform.runtime import run_execute
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(key="secret-check")
    _, token = api_key_create(name="security test")
    outputs: dict[str, str] = {}
    api = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    with captured_logs() as logs:
        # Something careless logs a key: the handler must mask it.
        logging.getLogger("routing_platform.security_test").warning(
            "calling with %s", SECRETS["OPENAI_API_KEY"]
        )
        try:
            raise RuntimeError(f"boom with {SECRETS['GEMINI_API_KEY']}")
        except RuntimeError:
            logging.getLogger("routing_platform.security_test").exception("failed")

        # Engine errors, as raised.
        with pytest.raises(RoutingError) as raised:
            async_to_sync(run_execute)(text="Summarise this report.", task_type="analysis")
        error = raised.value
        outputs["engine error str/repr"] = f"{error} {error!r}"
        outputs["engine error metadata"] = json.dumps(getattr(error, "metadata", {}), default=str)
        outputs["engine error traceback"] = "".join(traceback.format_exception(error))

        # HTTP API error bodies: the routing API and the OpenAI-compatible endpoint.
        for path, body in (
            (
                "/api/v1/routing/execute",
                {"text": "Summarise this.", "experiment": "secret-check", "unit_id": "u-1"},
            ),
            ("/api/v1/routing/evaluate", {"script": "A short script.", "niche": "general"}),
            (
                "/v1/chat/completions",
                {"model": "router", "messages": [{"role": "user", "content": "hi"}]},
            ),
            (
                "/v1/chat/completions",
                {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            ),
        ):
            response = api.post(path, body, content_type="application/json", **auth)
            assert response.status_code >= 400, (path, response.status_code)
            assert response.status_code != 500, response.content[:500]
            outputs[f"API {path} {body.get('model', '')}"] = response.content.decode()
    outputs["logs"] = logs.getvalue()
    assert "[REDACTED]" in outputs["logs"]  # the careless log lines were there, masked
    assert token not in outputs["logs"]

    # The OpenAI-compatible endpoint hands its records to Redis; write them as a worker would.
    from api.jobs import call_records_drain

    call_records_drain()
    calls = list(RoutedCall.objects.all())
    assert calls, "the failed calls were not recorded"
    assert any(call.status == "error" and call.error_message for call in calls)
    assert {call.source for call in calls} >= {"api", "openai"}, {call.source for call in calls}
    outputs["recorded calls"] = json.dumps([model_to_dict(call) for call in calls], default=str)

    pages = admin_pages(admin_client)
    outputs.update({f"admin {link}": html for link, html in pages.items()})
    assert all(token not in html for html in pages.values())

    from routing_platform.cli.subcommands import discover

    for name in ("status", "cost", "dashboard", "alerts", "version", "experiments", "config"):
        if name in discover():
            outputs[f"CLI routing {name}"] = run_cli(name)

    from experiments.reports import report_export_json
    from routing_platform.routing.analytics import analytics

    export_path = tmp_path / "report.json"
    analytics.export_report(export_path)
    outputs["analytics export"] = export_path.read_text()
    outputs["experiment report export"] = report_export_json(experiment=experiment)

    assert_no_secret(outputs)


HANDLER_PROBE = """
import json, logging, logging.config
from uvicorn.config import LOGGING_CONFIG
logging.config.dictConfig(LOGGING_CONFIG)  # what uvicorn does before it imports the app
import django
django.setup()                             # settings.LOGGING, as in every process we run
from rq.logutils import setup_loghandlers
setup_loghandlers("INFO")                  # what `manage.py rqworker` does
from config.logging_filters import RedactSecretsFilter
loggers = [logging.getLogger()] + [
    logger for logger in logging.root.manager.loggerDict.values()
    if isinstance(logger, logging.Logger)
]
print(json.dumps({
    "unfiltered": [
        f"{logger.name}: {handler!r}" for logger in loggers for handler in logger.handlers
        if not isinstance(handler, logging.NullHandler)
        and not any(isinstance(f, RedactSecretsFilter) for f in handler.filters)
    ],
    "uvicorn_handlers": len(logging.getLogger("uvicorn").handlers),
}))
"""


def test_every_configured_log_handler_redacts():
    """In a web or worker process, every log handler (uvicorn's and rq's included) masks secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ROUTER_"))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [sys.executable, "-c", HANDLER_PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["unfiltered"] == []
    assert probe["uvicorn_handlers"] == 1  # our redacting handler replaced uvicorn's


def test_redact_masks_configured_and_secret_shaped_values(settings):
    """Configured keys of any shape and anything shaped like a key or bearer token are masked."""
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    text = (
        f"key={SECRETS['OPENAI_COMPATIBLE_API_KEY']} Authorization: Bearer abcdefghijklmnop "
        "url=https://x/v1beta/models/m:generate?key=AIzaSomethingLongEnough1234567 "
        "token rk_abcdef_0123456789 x-api-key: sk-ant-zzzzzzzzzzzz"
    )
    masked = redact(text)
    assert leaks(masked) == []
    assert "abcdefghijklmnop" not in masked
    assert "rk_abcdef_0123456789" not in masked
    assert "AIzaSomethingLongEnough1234567" not in masked
    assert "sk-ant-zzzzzzzzzzzz" not in masked


@pytest.mark.django_db
def test_admin_login_is_rate_limited(settings, django_user_model, fast_hasher):
    """After ADMIN_LOGIN_FAILURE_LIMIT failures from one address, even the right password gets 429."""
    django_user_model.objects.create_superuser("boss", "boss@example.com", "right-password-123")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "boss", "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    locked = client.post("/admin/login/", {"username": "boss", "password": "wrong"})
    assert locked.status_code == 429
    assert (
        client.post(
            "/admin/login/", {"username": "boss", "password": "right-password-123"}
        ).status_code
        == 429
    )
    other_address = Client(REMOTE_ADDR="10.0.0.9")
    response = other_address.post(
        "/admin/login/", {"username": "boss", "password": "right-password-123"}
    )
    assert response.status_code == 302  # another client is not locked out


@pytest.mark.django_db
def test_spoofed_forwarded_for_does_not_escape_the_lockout(
    settings, django_user_model, fast_hasher
):
    """The limiter keys on REMOTE_ADDR: a new X-Forwarded-For per attempt does not reset it."""
    django_user_model.objects.create_superuser("boss", "boss@example.com", "right-password-123")
    client = Client()
    statuses = [
        client.post(
            "/admin/login/",
            {"username": "boss", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}",
        ).status_code
        for attempt in range(settings.AXES_FAILURE_LIMIT + 1)
    ]
    assert statuses[-1] == 429


@pytest.mark.django_db
def test_session_forms_require_csrf(admin_user):
    """The admin login and a logged-in admin form refuse a POST without the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/admin/login/", {"username": admin_user.username, "password": "password"}
    )
    assert response.status_code == 403
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[admin_user.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"username": "renamed"}).status_code == 403
    admin_user.refresh_from_db()
    assert admin_user.username != "renamed"


def _patterns(resolvers, prefix=""):
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_only_token_authenticated_endpoints_skip_csrf():
    """Every view outside the bearer-token APIs (/api/, /v1/, /health) keeps CSRF protection."""
    exempt = [
        route
        for route, callback in _patterns(get_resolver().url_patterns)
        if getattr(callback, "csrf_exempt", False)
        and not route.startswith(("api/", "v1/", "health"))
    ]
    assert exempt == []


@pytest.mark.django_db
def test_a_session_cookie_does_not_authenticate_the_api(admin_client):
    """The API takes only bearer tokens, so a logged-in browser cannot be tricked into calls."""
    response = admin_client.post(
        "/api/v1/routing/execute", {"text": "hi"}, content_type="application/json"
    )
    assert response.status_code == 401


PRODUCTION_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
secure = client.get("/admin/login/", secure=True)
plain = client.get("/admin/login/")
print(json.dumps({
    "hsts": secure.headers.get("Strict-Transport-Security", ""),
    "csrf_cookie": str(secure.cookies.get("csrftoken", "")),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location", ""),
    "frame_options": secure.headers.get("X-Frame-Options", ""),
    "nosniff": secure.headers.get("X-Content-Type-Options", ""),
}))
"""


def test_production_cookies_are_secure_and_hsts_is_on(tmp_path):
    """With debug off: HSTS (a year, subdomains, preload), Secure cookies, HTTP redirected to HTTPS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ROUTER_"))}
    env.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="p" * 20 + "-production-probe-secret-0123456789-abcdefghij",
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="config.settings",
        ROUTING_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "Secure" in probe["csrf_cookie"]
    assert probe["session_cookie_secure"] is True and probe["csrf_cookie_secure"] is True
    assert probe["plain_status"] == 301
    assert probe["plain_location"].startswith("https://")
    assert probe["frame_options"] == "DENY"
    assert probe["nosniff"] == "nosniff"


def test_development_does_not_force_https():
    """In debug, cookies work over plain HTTP so `make demo` logs in on http://127.0.0.1."""
    from django.conf import settings

    assert settings.SESSION_COOKIE_SECURE is False
    assert settings.SECURE_SSL_REDIRECT is False
