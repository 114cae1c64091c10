"""The routing API through ninja's test client (simulated providers, fake Redis)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from ninja.testing import TestAsyncClient

from api.routing_api import routing_api
from experiments.models import Experiment, RoutedCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    return TestAsyncClient(routing_api)


def experiment_body(key="smart-vs-council", **overrides):
    body = {
        "key": key,
        "name": "Smart routing vs the council",
        "arms": [
            {"key": "control", "strategy": "original_council", "weight": 50, "is_control": True},
            {"key": "smart", "strategy": "smart_routing", "weight": 50},
        ],
    }
    body.update(overrides)
    return body


async def test_execute_runs_and_records_the_call(client, auth_headers, fake_async_redis):
    """POST execute answers the result with _routing_metadata and the recorded call's id."""
    response = await client.post(
        "/execute",
        json={"text": "Summarise: the cat sat.", "task_type": "summarization"},
        headers=auth_headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["response"]
    assert body["_routing_metadata"]["tier"] in {"mini", "standard", "premium"}
    call = await RoutedCall.objects.aget(pk=body["call_id"])
    assert (call.kind, call.source, call.status) == ("execute", "api", "success")
    job = await client.get(f"/jobs/{call.pk}", headers=auth_headers)
    assert job.status_code == 200
    assert job.json()["status"] == "success"
    assert job.json()["result"]["response"] == body["response"]


async def test_evaluate_returns_the_council_shape(client, auth_headers, fake_async_redis):
    """POST evaluate answers verdict, final_score and feedback, like smart_council."""
    response = await client.post(
        "/evaluate",
        json={"script": "A cat learns to surf.", "niche": "comedy"},
        headers=auth_headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert 0 <= body["final_score"] <= 100
    assert body["verdict"]
    assert "_routing_metadata" in body


async def test_execute_with_an_experiment_assigns_a_sticky_arm(
    client, auth_headers, fake_async_redis
):
    """With experiment and unit_id the call runs the unit's arm and is counted in the experiment."""
    created = await client.post(
        "/experiments", json=experiment_body(start=True), headers=auth_headers
    )
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "running"
    arms = set()
    for _ in range(2):
        response = await client.post(
            "/execute",
            json={"text": "hello", "experiment": "smart-vs-council", "unit_id": "user-1"},
            headers=auth_headers,
        )
        assert response.status_code == 200, response.content
        arms.add(response.json()["experiment"]["arm"])
    assert len(arms) == 1
    calls = await sync_to_async(list)(RoutedCall.objects.filter(experiment__key="smart-vs-council"))
    assert len(calls) == 2


async def test_execute_with_experiment_needs_unit_id(client, auth_headers, fake_async_redis):
    """An experiment without a unit_id is a 400 naming unit_id."""
    response = await client.post(
        "/execute", json={"text": "hello", "experiment": "x"}, headers=auth_headers
    )
    assert response.status_code == 400
    assert response.json()["param"] == "unit_id"


async def test_async_execute_enqueues_and_returns_a_job(client, auth_headers, fake_queue):
    """async: true writes a queued call, enqueues its job and answers 202 with the job id."""
    response = await client.post(
        "/execute", json={"text": "hello", "async": True}, headers=auth_headers
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert response.json()["status_url"].endswith(f"/jobs/{job_id}")
    call = await RoutedCall.objects.aget(pk=job_id)
    assert call.status == "queued"
    import django_rq

    assert django_rq.get_queue("routing").count == 1


async def test_unknown_job_is_404(client, auth_headers, fake_async_redis):
    """A job id that does not exist is a 404 that says so."""
    response = await client.get("/jobs/999999", headers=auth_headers)
    assert response.status_code == 404
    assert "999999" in response.json()["message"]


async def test_experiments_create_list_ramp(client, auth_headers, fake_async_redis):
    """Experiments are created, listed and ramped through the API."""
    created = await client.post("/experiments", json=experiment_body(), headers=auth_headers)
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "draft"
    listed = await client.get("/experiments", headers=auth_headers)
    assert [e["key"] for e in listed.json()["experiments"]] == ["smart-vs-council"]
    ramped = await client.post(
        "/experiments/smart-vs-council/ramp",
        json={"traffic_percentage": 25},
        headers=auth_headers,
    )
    assert ramped.status_code == 200, ramped.content
    assert ramped.json()["traffic_percentage"] == 25
    experiment = await Experiment.objects.aget(key="smart-vs-council")
    assert experiment.traffic_percentage == 25


async def test_experiment_create_refusals_say_why(client, auth_headers, fake_async_redis):
    """Weights not summing to 100 and a duplicate key are 4xx with a message."""
    bad = experiment_body()
    bad["arms"][1]["weight"] = 10
    response = await client.post("/experiments", json=bad, headers=auth_headers)
    assert response.status_code == 400
    assert "100" in response.json()["message"]
    assert (
        await client.post("/experiments", json=experiment_body(), headers=auth_headers)
    ).status_code == 201
    again = await client.post("/experiments", json=experiment_body(), headers=auth_headers)
    assert again.status_code in {400, 409}
    assert "key" in again.json()["message"].lower()


async def test_unknown_experiment_is_404(client, auth_headers, fake_async_redis):
    """Ramp, results and export of an unknown key are 404s naming the key."""
    for method, path in [
        ("post", "/experiments/nope/ramp"),
        ("get", "/experiments/nope/results"),
        ("get", "/experiments/nope/export"),
    ]:
        kwargs = {"json": {"traffic_percentage": 5}} if method == "post" else {}
        response = await getattr(client, method)(path, headers=auth_headers, **kwargs)
        assert response.status_code == 404, (path, response.content)
        assert "nope" in response.json()["message"]


async def test_dashboard_and_analytics(client, auth_headers, fake_async_redis):
    """GET dashboard and analytics answer the facade's dicts; a bad window is a 400."""
    await client.post("/execute", json={"text": "hello"}, headers=auth_headers)
    dashboard = await client.get("/dashboard", headers=auth_headers)
    assert dashboard.status_code == 200, dashboard.content
    assert dashboard.json()["overview"]["total_requests"] == 1
    assert "alerts" in dashboard.json()
    analytics = await client.get("/analytics?window=7d", headers=auth_headers)
    assert analytics.status_code == 200, analytics.content
    assert "by_complexity" in analytics.json()
    bad = await client.get("/dashboard?window=forever", headers=auth_headers)
    assert bad.status_code == 400
    assert "window" in bad.json()["message"].lower()


async def test_read_key_cannot_write(client, make_key, fake_async_redis):
    """A read-scoped key reads but gets 403 on execute."""
    _, token = await sync_to_async(make_key)(scopes=["read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/experiments", headers=headers)).status_code == 200
    response = await client.post("/execute", json={"text": "x"}, headers=headers)
    assert response.status_code == 403
    assert "write" in response.json()["message"]


async def test_every_endpoint_but_health_needs_a_key(client, fake_async_redis):
    """No key: 401 with a message everywhere except /health."""
    for method, path in [
        ("get", "/experiments"),
        ("get", "/dashboard"),
        ("get", "/analytics"),
        ("get", "/jobs/1"),
        ("post", "/execute"),
        ("post", "/evaluate"),
        ("get", "/experiments/x/results"),
    ]:
        response = await getattr(client, method)(path)
        assert response.status_code == 401, path
        assert "API key" in response.json()["message"]
    health = await client.get("/health")
    assert health.status_code in {200, 503}
    assert set(health.json()) >= {"status", "database", "redis", "workers"}


async def test_validation_errors_name_the_field(client, auth_headers, fake_async_redis):
    """A missing or out-of-range field is a 400 whose message names it."""
    response = await client.post("/execute", json={"task_type": "analysis"}, headers=auth_headers)
    assert response.status_code == 400
    assert "text" in response.json()["message"]
    response = await client.post(
        "/execute", json={"text": "x", "task_type": "NOT A TYPE"}, headers=auth_headers
    )
    assert response.status_code == 400
    assert "task_type" in response.json()["message"]
