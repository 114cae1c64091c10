"""NUL characters (``\\u0000``) in any text field are a 400 in the API's error shape, before
any upstream call: PostgreSQL cannot store them, so the call could not be recorded (a
poison pill for the records drain, or a 500 after the upstream was paid)."""

from __future__ import annotations

import json

import httpx
import pytest
from asgiref.sync import sync_to_async

from experiments.models import RoutedCall
from routing_platform import runtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

NUL = "a\u0000b"


@pytest.fixture
def upstream_calls(monkeypatch):
    """Every engine run the API starts (none may happen for a refused request)."""
    calls = []
    real_execute, real_evaluate = runtime.run_execute, runtime.run_evaluate

    async def run_execute(**kwargs):
        calls.append(kwargs)
        return await real_execute(**kwargs)

    async def run_evaluate(**kwargs):
        calls.append(kwargs)
        return await real_evaluate(**kwargs)

    monkeypatch.setattr(runtime, "run_execute", run_execute)
    monkeypatch.setattr(runtime, "run_evaluate", run_evaluate)
    return calls


async def _post(path: str, body: dict, token: str) -> httpx.Response:
    from config.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(
            path,
            content=json.dumps(body),
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )


CHAT = {"model": "router", "messages": [{"role": "user", "content": "hi"}]}
OPENAI_CASES = {
    "content": ({**CHAT, "messages": [{"role": "user", "content": NUL}]}, "messages.0.content"),
    "content part": (
        {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": NUL}]}]},
        "messages.0.content",
    ),
    "user": ({**CHAT, "user": NUL}, "user"),
    "model": ({**CHAT, "model": NUL}, "model"),
    "name": (
        {**CHAT, "messages": [{"role": "user", "content": "hi", "name": NUL}]},
        "messages.0.name",
    ),
}


@pytest.mark.parametrize("case", list(OPENAI_CASES))
async def test_chat_completion_with_nul_is_a_400_before_any_upstream_call(
    case, make_key, fake_async_redis, upstream_calls
):
    """The issue's poison pill: 400 in OpenAI's shape naming the field; nothing queued."""
    from api.recording import RECORDS_KEY

    body, param = OPENAI_CASES[case]
    _, token = await sync_to_async(make_key)()
    response = await _post("/v1/chat/completions", body, token)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"].startswith(param)
    assert "NUL" in error["message"]
    assert upstream_calls == []
    assert await fake_async_redis_llen(fake_async_redis, RECORDS_KEY) == 0


async def fake_async_redis_llen(server, key: str) -> int:
    import fakeredis

    return fakeredis.FakeRedis(server=server).llen(key)


ROUTING_CASES = {
    "execute text": ("/api/v1/routing/execute", {"text": NUL}, "text"),
    "execute unit_id": ("/api/v1/routing/execute", {"text": "hi", "unit_id": NUL}, "unit_id"),
    "execute async text": ("/api/v1/routing/execute", {"text": NUL, "async": True}, "text"),
    "execute async unit_id": (
        "/api/v1/routing/execute",
        {"text": "hi", "unit_id": NUL, "async": True},
        "unit_id",
    ),
    "evaluate script": ("/api/v1/routing/evaluate", {"script": NUL}, "script"),
    "evaluate niche": ("/api/v1/routing/evaluate", {"script": "s", "niche": NUL}, "niche"),
    "evaluate async niche": (
        "/api/v1/routing/evaluate",
        {"script": "s", "niche": NUL, "async": True},
        "niche",
    ),
    "experiment name": (
        "/api/v1/routing/experiments",
        {
            "key": "nul",
            "name": NUL,
            "arms": [
                {"key": "a", "strategy": "smart_routing", "is_control": True},
                {"key": "b", "strategy": "original_council"},
            ],
        },
        "name",
    ),
}


@pytest.mark.parametrize("case", list(ROUTING_CASES))
async def test_routing_api_with_nul_is_a_400_and_records_nothing(
    case, make_key, fake_queue, upstream_calls
):
    """execute (sync and async), evaluate and experiments: 400 naming the field, no engine
    run, no row written, no job queued."""
    path, body, param = ROUTING_CASES[case]
    _, token = await sync_to_async(make_key)()
    response = await _post(path, body, token)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert response.json()["param"] == param
    assert upstream_calls == []
    assert await RoutedCall.objects.acount() == 0


async def test_an_upstream_answer_with_nul_is_recorded_without_it(
    make_key, fake_async_redis, monkeypatch
):
    """A NUL the upstream sends back cannot poison the record either: it is stripped from
    the stored result (PostgreSQL refuses it), and the call is recorded."""
    from experiments.services import routed_call_record

    call = await sync_to_async(routed_call_record)(
        kind="chat",
        source="openai",
        unit_id="u\u0000v",
        request_payload={"messages": [{"role": "user", "content": "x\u0000y"}]},
        result={"response": "an\u0000swer", "model": "m\u0000", "_routing_metadata": {}},
        idempotency_key="openai:nul-answer",
    )
    await sync_to_async(call.refresh_from_db)()
    assert call.result["response"] == "answer"
    assert call.unit_id == "uv" and call.model == "m"
    assert call.request_payload["messages"][0]["content"] == "xy"
