"""The admin login lock-out cannot be dodged with X-Forwarded-For on a real uvicorn server
started the way every server of the project is (``launcher.uvicorn_argv``)."""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings

from routing_platform.launcher import proxy_header_args, uvicorn_argv
from routing_platform.serve import serve_argv

pytestmark = [pytest.mark.slow, pytest.mark.redis_server]

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _login_attempt(client: httpx.Client, forwarded_for: str) -> int:
    page = client.get("/admin/login/", headers={"X-Forwarded-For": forwarded_for})
    match = CSRF_FIELD.search(page.text)
    token = match.group(1) if match else ""
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"username": "nobody", "password": "wrong", "csrfmiddlewaretoken": token},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


def test_rotating_forwarded_for_cannot_dodge_the_admin_lockout(server_process):
    """Wrong logins from loopback, each with a new X-Forwarded-For, are counted against the
    one real address: the attempt after ADMIN_LOGIN_FAILURE_LIMIT is locked out (429), and so
    is a fresh header value after that."""
    limit = settings.AXES_FAILURE_LIMIT
    with httpx.Client(base_url=server_process.base_url, timeout=30) as client:
        statuses = [_login_attempt(client, f"10.9.9.{attempt}") for attempt in range(limit + 1)]
        assert statuses[: limit - 1] == [200] * (limit - 1)
        assert statuses[-1] == 429
        assert _login_attempt(client, "10.9.9.200") == 429


def test_forwarded_headers_are_trusted_only_from_named_proxies(monkeypatch):
    """No FORWARDED_ALLOW_IPS: uvicorn's loopback default is switched off; named proxies only."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert "--no-proxy-headers" in uvicorn_argv("127.0.0.1", 8000)
    assert proxy_header_args("  ") == ["--no-proxy-headers"]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.5")
    argv = uvicorn_argv("127.0.0.1", 8000)
    assert "--proxy-headers" in argv and "--forwarded-allow-ips=10.0.0.5" in argv
    assert "--no-proxy-headers" not in argv


def test_production_entry_point_uses_the_same_command_line(monkeypatch):
    """``python -m routing_platform.serve`` (Dockerfile, compose) builds uvicorn_argv, passing
    the other options through."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    argv = serve_argv(["--host=0.0.0.0", "--port=9000", "--workers=3"])
    assert argv == uvicorn_argv("0.0.0.0", 9000, "--workers=3")  # noqa: S104
