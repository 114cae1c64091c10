"""Feedback through the routing API, the x-router-call-id header, and the quality summary
(ninja's test client, simulated providers, fake Redis)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from ninja.testing import TestAsyncClient

from api.routing_api import routing_api
from experiments.models import QualitySignal, RoutedCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    return TestAsyncClient(routing_api)


async def _execute(client, headers, **extra) -> tuple[str, dict]:
    response = await client.post(
        "/execute", json={"text": "Classify: great product!", **extra}, headers=headers
    )
    assert response.status_code == 200, response.content
    return response.headers["x-router-call-id"], response.json()


async def test_answers_carry_the_call_id_and_feedback_shows_in_the_report(
    client, auth_headers, fake_async_redis
):
    """An experiment call's answer names its call (header and body); thumbs up on it is
    recorded once (201, then 200) and counted in the experiment report's feedback."""
    created = await client.post(
        "/experiments",
        json={
            "key": "fb",
            "name": "Feedback",
            "start": True,
            "quality_signal": "feedback",
            "arms": [
                {"key": "control", "strategy": "original_council", "is_control": True},
                {"key": "smart", "strategy": "smart_routing"},
            ],
        },
        headers=auth_headers,
    )
    assert created.status_code == 201, created.content
    call_id, body = await _execute(client, auth_headers, experiment="fb", unit_id="user-1")
    assert call_id == str(body["call_id"])
    arm = body["experiment"]["arm"]

    first = await client.post(
        f"/calls/{call_id}/feedback",
        json={"thumbs": "up", "comment": "spot on"},
        headers=auth_headers,
    )
    again = await client.post(
        f"/calls/{call_id}/feedback", json={"score": 0.1}, headers=auth_headers
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["value"] == 1.0 and again.json()["value"] == 1.0
    assert again.json()["created"] is False
    assert await QualitySignal.objects.filter(source="feedback").acount() == 1

    report = await client.get("/experiments/fb/results", headers=auth_headers)
    feedback = report.json()["quality"]["signals"]["feedback"]["arms"][arm]
    assert feedback["signals"] == 1 and feedback["sums"]["sum_y"] == 1.0
    summary = await client.get("/quality?experiment=fb", headers=auth_headers)
    assert summary.json()["sources"]["feedback"] == {
        "signals": 1,
        "errors": 0,
        "mean": 1.0,
        "cost_usd": 0.0,
        "simulated": 0,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"score": 1.5}, "between 0 and 1"),
        ({"score": -1}, "between 0 and 1"),
        ({}, "exactly one"),
        ({"score": 0.5, "thumbs": "down"}, "exactly one"),
    ],
)
async def test_bad_feedback_is_a_400_and_records_nothing(
    client, auth_headers, fake_async_redis, body, message
):
    call_id, _ = await _execute(client, auth_headers)
    response = await client.post(f"/calls/{call_id}/feedback", json=body, headers=auth_headers)
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]
    assert not await QualitySignal.objects.aexists()


async def test_thumbs_must_be_up_or_down(client, auth_headers, fake_async_redis):
    call_id, _ = await _execute(client, auth_headers)
    response = await client.post(
        f"/calls/{call_id}/feedback", json={"thumbs": "meh"}, headers=auth_headers
    )
    assert response.status_code == 400


async def test_unknown_or_foreign_calls_are_404(client, auth_headers, make_key, fake_async_redis):
    """An unknown id, a malformed id, and a /v1 call recorded under another key: 404."""
    for call_id in ("999999", "nope", "chatcmpl-unknown"):
        response = await client.post(
            f"/calls/{call_id}/feedback", json={"thumbs": "up"}, headers=auth_headers
        )
        assert response.status_code == 404, (call_id, response.content)
    await sync_to_async(RoutedCall.objects.create)(
        idempotency_key="openai:chatcmpl-theirs",
        kind="chat",
        status="success",
        request_payload={"api_key": "someone-else"},
    )
    response = await client.post(
        "/calls/chatcmpl-theirs/feedback", json={"thumbs": "up"}, headers=auth_headers
    )
    assert response.status_code == 404
    assert not await QualitySignal.objects.aexists()


async def test_feedback_on_a_shadow_call_is_a_400(client, auth_headers, fake_async_redis):
    shadow = await sync_to_async(RoutedCall.objects.create)(
        idempotency_key="shadow-1", status="success", is_shadow=True
    )
    response = await client.post(
        f"/calls/{shadow.pk}/feedback", json={"score": 0.5}, headers=auth_headers
    )
    assert response.status_code == 400 and "shadow" in response.json()["message"]


async def test_feedback_needs_the_write_scope(client, make_key, fake_async_redis):
    _, token = await sync_to_async(make_key)(name="reader", scopes=("read",))
    response = await client.post(
        "/calls/1/feedback", json={"thumbs": "up"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403


async def test_a_routing_api_call_is_only_visible_to_its_own_key(
    client, auth_headers, make_key, fake_async_redis
):
    """Feedback from another key on this key's call is a 404, as for an unknown call."""
    call_id, _ = await _execute(client, auth_headers)
    _, other = await sync_to_async(make_key)(name="other-team")
    response = await client.post(
        f"/calls/{call_id}/feedback",
        json={"thumbs": "down"},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert response.status_code == 404
    assert not await QualitySignal.objects.aexists()


@pytest.mark.parametrize("stream", [False, True])
async def test_v1_answers_carry_the_call_id_that_takes_feedback(
    client, auth_headers, fake_async_redis, drain_records, stream
):
    """/v1 answers (plain and streamed) name their call in x-router-call-id: the
    completion id, known before the record is written; once drained it takes feedback."""
    from api.openai_api import openai_api

    v1 = TestAsyncClient(openai_api)
    response = await v1.post(
        "/chat/completions",
        json={"model": "router", "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
        headers=auth_headers,
    )
    assert response.status_code == 200
    call_id = response["x-router-call-id"]
    assert call_id.startswith("chatcmpl-")
    if not stream:
        assert response.json()["id"] == call_id
    early = await client.post(
        f"/calls/{call_id}/feedback", json={"thumbs": "up"}, headers=auth_headers
    )
    assert early.status_code == 404 and "retry shortly" in early.json()["message"]
    assert await drain_records() == 1
    posted = await client.post(
        f"/calls/{call_id}/feedback", json={"thumbs": "up"}, headers=auth_headers
    )
    assert posted.status_code == 201
