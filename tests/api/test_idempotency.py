"""Idempotency-Key on /v1 and /api/v1/routing/* (Stripe's semantics), through the served
ASGI application: same key + same body -> the same answer and one record; same key + a
different body -> 422; a request still running -> 409."""

from __future__ import annotations

import json

import fakeredis
import httpx
import openai
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from api.idempotency import IdempotentRequest
from api.recording import RECORDS_KEY
from experiments.models import RoutedCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

CHAT = {"model": "router", "messages": [{"role": "user", "content": "Capital of France?"}]}


async def _post(path: str, body: dict, token: str | None, key: str | None) -> httpx.Response:
    from config.asgi import application

    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if key is not None:
        headers["idempotency-key"] = key
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(path, content=json.dumps(body), headers=headers)


async def test_chat_completion_retried_with_the_key_is_answered_once(
    make_key, fake_async_redis, drain_records
):
    """The retry gets the first answer (same completion id), marked as replayed; one record."""
    _, token = await sync_to_async(make_key)()
    first = await _post("/v1/chat/completions", CHAT, token, "retry-1")
    again = await _post("/v1/chat/completions", CHAT, token, "retry-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-router-model"] == first.headers["x-router-model"]
    assert fakeredis.FakeRedis(server=fake_async_redis).llen(RECORDS_KEY) == 1
    await drain_records()
    assert await RoutedCall.objects.acount() == 1
    other = await _post("/v1/chat/completions", CHAT, token, "retry-2")  # a new key runs again
    assert other.json()["id"] != first.json()["id"]


async def test_same_key_with_a_different_body_is_a_422(make_key, fake_async_redis):
    """Reusing a key for another request is the client's bug: 422 in OpenAI's shape."""
    _, token = await sync_to_async(make_key)()
    await _post("/v1/chat/completions", CHAT, token, "reused")
    changed = {**CHAT, "messages": [{"role": "user", "content": "Capital of Spain?"}]}
    response = await _post("/v1/chat/completions", changed, token, "reused")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "path, body, id_field",
    [
        ("/api/v1/routing/execute", {"text": "Summarise: the cat sat."}, "call_id"),
        ("/api/v1/routing/evaluate", {"script": "A short script."}, "call_id"),
        ("/api/v1/routing/execute", {"text": "Summarise: the cat sat.", "async": True}, "job_id"),
    ],
)
async def test_routing_calls_with_the_key_run_and_record_once(
    path, body, id_field, make_key, fake_queue
):
    """execute / evaluate (inline and queued): the retry gets the same call id; one row."""
    _, token = await sync_to_async(make_key)()
    first = await _post(path, body, token, "routing-1")
    again = await _post(path, body, token, "routing-1")
    assert first.status_code in (200, 202)
    assert (again.status_code, again.json()[id_field]) == (
        first.status_code,
        first.json()[id_field],
    )
    assert await RoutedCall.objects.acount() == 1
    mismatch = await _post(path, {**body, "unit_id": "someone-else"}, token, "routing-1")
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "idempotency_key_reused"


async def test_keys_are_scoped_to_the_caller(make_key, fake_queue):
    """Two API keys may use the same Idempotency-Key: each gets its own call."""
    _, alice = await sync_to_async(make_key)(name="alice")
    _, bob = await sync_to_async(make_key)(name="bob")
    body = {"text": "Summarise: the cat sat."}
    first = await _post("/api/v1/routing/execute", body, alice, "shared")
    second = await _post("/api/v1/routing/execute", body, bob, "shared")
    assert first.json()["call_id"] != second.json()["call_id"]


async def test_answers_of_requests_that_did_not_run_are_not_kept(make_key, fake_queue):
    """A 401 (no key yet) is not replayed: the retry with credentials runs."""
    _, token = await sync_to_async(make_key)()
    body = {"text": "Summarise: the cat sat."}
    assert (await _post("/api/v1/routing/execute", body, None, "late-auth")).status_code == 401
    # the 401 was scoped to "no credentials"; the same key with credentials is a new claim
    assert (await _post("/api/v1/routing/execute", body, token, "late-auth")).status_code == 200
    assert not await IdempotentRequest.objects.filter(status_code=401).aexists()


async def test_a_request_still_running_is_a_409(make_key, fake_queue):
    """The first request has not answered yet: the duplicate is told to retry shortly."""
    import hashlib

    from api.idempotency import _fingerprint

    _, token = await sync_to_async(make_key)()
    body = {"text": "Summarise: the cat sat."}
    scope = {"method": "POST", "path": "/api/v1/routing/execute", "query_string": b""}
    await IdempotentRequest.objects.acreate(
        scope=hashlib.sha256(f"Bearer {token}".encode()).hexdigest(),
        key="running",
        fingerprint=_fingerprint(scope, json.dumps(body).encode()),
        created_at=timezone.now(),
    )
    response = await _post("/api/v1/routing/execute", body, token, "running")
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    assert await RoutedCall.objects.acount() == 0


async def test_an_unusable_key_is_a_400(make_key, fake_queue):
    _, token = await sync_to_async(make_key)()
    response = await _post("/api/v1/routing/execute", {"text": "x"}, token, "k" * 300)
    assert response.status_code == 400
    assert response.json()["param"] == "Idempotency-Key"


@pytest.mark.slow
@pytest.mark.redis_server
def test_openai_sdk_retry_with_the_key_gets_one_answer_and_one_record(server_process):
    """The official SDK, sending the header on a real server: the second call (what its
    retry sends) returns the first completion, and the worker records one row."""
    sdk = openai.OpenAI(
        base_url=f"{server_process.base_url}/v1", api_key=server_process.token, max_retries=0
    )
    headers = {"Idempotency-Key": "sdk-retry-1"}
    first = sdk.chat.completions.create(**CHAT, extra_headers=headers)
    again = sdk.chat.completions.with_raw_response.create(**CHAT, extra_headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parse().id == first.id
    recorded = server_process.wait_for(
        f"SELECT COUNT(*) FROM experiments_routedcall WHERE idempotency_key = 'openai:{first.id}'",
        1,
        timeout_s=60,
    )
    assert recorded == 1


async def test_keys_older_than_a_day_are_purged(make_key, fake_queue):
    """The periodic purge forgets expired keys; a fresh key stays."""
    from api.idempotency import KEY_TTL, idempotency_purge

    old = timezone.now() - KEY_TTL - timezone.timedelta(minutes=1)
    await IdempotentRequest.objects.acreate(scope="s", key="old", fingerprint="f", created_at=old)
    await IdempotentRequest.objects.acreate(
        scope="s", key="new", fingerprint="f", created_at=timezone.now()
    )
    assert await sync_to_async(idempotency_purge)() == 1
    assert [row.key async for row in IdempotentRequest.objects.all()] == ["new"]


async def test_an_oversized_body_is_refused_before_it_is_buffered(make_key, fake_queue, settings):
    """Over API_MAX_BODY_BYTES with a key: the usual 413, nothing claimed for the key."""
    settings.API_MAX_BODY_BYTES = 1024
    _, token = await sync_to_async(make_key)()
    response = await _post("/api/v1/routing/execute", {"text": "x" * 5000}, token, "big")
    assert response.status_code == 413
    assert not await IdempotentRequest.objects.aexists()
