"""The lean ASGI path of POST /v1/chat/completions answers exactly as the Django (ninja) path.

Each request goes through ``config.asgi.application`` twice: once as served (the
lean handler, ``api.asgi.LeanChatCompletions``) and once through Django's API handler (the
ninja view); status, body (ids and timings aside) and headers must match.
"""

from __future__ import annotations

import json

import httpx
import pytest

from api import asgi as api_asgi
from config.static_asgi import StaticFilesASGI
from routing_platform.engine.outcome import CallOutcome

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "http://testserver"
CHAT = "/v1/chat/completions"
VOLATILE_HEADERS = {
    "x-router-overhead-ms",
    "x-router-call-id",
    "content-length",
    "transfer-encoding",
}


@pytest.fixture
def apps():
    """(lean, django): the served application, and Django's API handler alone."""
    from config.asgi import application

    # Static files are answered ahead of the API dispatcher (config/static_asgi.py).
    assert isinstance(application, StaticFilesASGI)
    dispatcher = application.app
    assert isinstance(dispatcher, api_asgi.ApiDispatcher)
    return application, dispatcher.api_application


async def send(app, body, headers):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        return await client.post(CHAT, content=body, headers=headers)


def comparable(response: httpx.Response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
        for event in events:
            event.pop("id"), event.pop("created")
        return response.status_code, headers, events
    body = response.json()
    if isinstance(body, dict):
        body.pop("id", None), body.pop("created", None)
    return response.status_code, headers, body


def chat(**fields) -> bytes:
    return json.dumps(
        {"model": "router", "messages": [{"role": "user", "content": "Capital of France?"}]}
        | fields
    ).encode()


CASES = {
    "routed": (chat(), True),
    "pass-through": (chat(model="gpt-4.1-mini", temperature=0.2, max_tokens=40), True),
    "stream": (chat(stream=True), True),
    "unknown model": (chat(model="no-such-model"), True),
    "no text": (json.dumps({"model": "router", "messages": [{"role": "tool"}]}).encode(), True),
    "missing messages": (b'{"model": "router"}', True),
    "bad field types": (b'{"model": 3, "messages": "x", "temperature": "hot"}', True),
    "not an object": (b"[1, 2]", True),
    "not JSON": (b"{nope", True),
    "empty body": (b"", True),
    "no key": (chat(), False),
    "experiment without user": (chat(experiment="rollout"), True),
    "unknown experiment": (chat(experiment="no-such-experiment", user="user-1"), True),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_lean_path_answers_like_the_ninja_view(case, apps, make_key, fake_async_redis):
    """Same status, error message and shape, headers and completion on both paths."""
    from asgiref.sync import sync_to_async

    body, with_key = CASES[case]
    _, token = await sync_to_async(make_key)()
    headers = {"content-type": "application/json"}
    if with_key:
        headers["authorization"] = f"Bearer {token}"
    lean, django = apps
    lean_response = await send(lean, body, headers)
    django_response = await send(django, body, headers)
    assert comparable(lean_response) == comparable(django_response)
    assert lean_response.status_code < 500


async def test_wrong_scope_and_bad_scheme_are_refused_alike(apps, make_key, fake_async_redis):
    """A read-only key is a 403 and a non-Bearer header a 401 on both paths."""
    from asgiref.sync import sync_to_async

    _, token = await sync_to_async(make_key)(scopes=("read",))
    lean, django = apps
    for authorization in (f"Bearer {token}", f"Basic {token}"):
        headers = {"content-type": "application/json", "authorization": authorization}
        lean_response = await send(lean, chat(), headers)
        assert comparable(lean_response) == comparable(await send(django, chat(), headers))
        assert lean_response.status_code in (401, 403)


async def test_rate_limited_key_gets_429_with_retry_after(apps, make_key, fake_async_redis):
    """Past its per-minute limit a key is answered 429 with Retry-After on the lean path."""
    from asgiref.sync import sync_to_async

    _, token = await sync_to_async(make_key)(rate_limit_per_minute=1)
    lean, _ = apps
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    assert (await send(lean, chat(), headers)).status_code == 200
    limited = await send(lean, chat(), headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"


async def test_oversized_content_length_is_a_413_before_auth(apps, settings):
    """Over API_MAX_BODY_BYTES: 413 in OpenAI's shape, no key needed, as on the Django path."""
    settings.API_MAX_BODY_BYTES = 2048
    lean, django = apps
    body = chat(messages=[{"role": "user", "content": "x" * 5000}])
    headers = {"content-type": "application/json"}
    lean_response = await send(lean, body, headers)
    assert lean_response.status_code == 413
    assert comparable(lean_response) == comparable(await send(django, body, headers))


async def test_the_lean_path_hands_the_record_to_the_workers(
    apps, make_key, fake_async_redis, drain_records
):
    """A lean-path call is recorded like any routed call (source openai, the key's name)."""
    from asgiref.sync import sync_to_async

    from experiments.models import RoutedCall

    _, token = await sync_to_async(make_key)(name="lean-key")
    lean, _ = apps
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    response = await send(lean, chat(user="unit-7"), headers)
    assert response.status_code == 200
    assert await drain_records() == 1
    call = await RoutedCall.objects.aget()
    assert call.source == "openai"
    assert call.unit_id == "unit-7"
    assert call.request_payload["api_key"] == "lean-key"


def test_security_headers_follow_the_settings(settings):
    """HSTS only on HTTPS and only when configured; nosniff and the referrer policy always."""
    settings.SECURE_HSTS_SECONDS = 3600
    secure = dict(api_asgi.security_headers(True))
    plain = dict(api_asgi.security_headers(False))
    assert secure[b"Strict-Transport-Security"].startswith(b"max-age=3600")
    assert b"Strict-Transport-Security" not in plain
    assert plain[b"X-Content-Type-Options"] == b"nosniff"
    assert b"Referrer-Policy" in plain


def test_router_headers_carry_only_printable_ascii():
    """A model name from the upstream's answer cannot inject header lines on either path."""
    from api.openai_api import _router_headers

    headers = _router_headers(
        CallOutcome.from_result({"model": "gpt\r\nset-cookie: x=1\u00e9", "_routing_metadata": {}}),
        1.0,
    )
    assert headers["x-router-model"] == "gptset-cookie: x=1"
