"""The routing API driven with httpx against a real uvicorn process and a real rqworker."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.redis_server]


@pytest.fixture
def http(server_process):
    with httpx.Client(
        base_url=f"{server_process.base_url}/api/v1/routing",
        headers={"Authorization": f"Bearer {server_process.token}"},
        timeout=30,
    ) as client:
        yield client


def test_health_needs_no_key(server_process):
    """GET /health answers without a key: database and Redis up, workers counted."""
    response = httpx.get(f"{server_process.base_url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["status"] in {"ok", "degraded"}
    assert isinstance(body["workers"]["count"], int)


def test_interactive_docs_load(server_process):
    """The Swagger pages of both APIs render (through the lean API handler)."""
    for path in ("/api/v1/routing/docs", "/v1/docs"):
        response = httpx.get(f"{server_process.base_url}{path}")
        assert response.status_code == 200, path
        assert "openapi.json" in response.text


def test_openapi_schema_lists_every_endpoint(server_process):
    """The OpenAPI schema documents the guide's endpoints."""
    schema = httpx.get(f"{server_process.base_url}/api/v1/routing/openapi.json").json()
    paths = set(schema["paths"])
    for path in [
        "/api/v1/routing/execute",
        "/api/v1/routing/jobs/{job_id}",
        "/api/v1/routing/evaluate",
        "/api/v1/routing/dashboard",
        "/api/v1/routing/analytics",
        "/api/v1/routing/experiments",
        "/api/v1/routing/experiments/{key}/ramp",
        "/api/v1/routing/experiments/{key}/results",
        "/api/v1/routing/experiments/{key}/export",
        "/api/v1/routing/health",
    ]:
        assert path in paths, path


def test_execute_evaluate_and_monitoring(http):
    """Execute and evaluate run inline; the dashboard and analytics count them."""
    execute = http.post(
        "/execute", json={"text": "Extract the year: born 1990.", "task_type": "extraction"}
    )
    assert execute.status_code == 200, execute.text
    assert execute.json()["_routing_metadata"]["cost"] > 0
    evaluate = http.post("/evaluate", json={"script": "A dog runs a bakery.", "niche": "comedy"})
    assert evaluate.status_code == 200, evaluate.text
    assert 0 <= evaluate.json()["final_score"] <= 100
    dashboard = http.get("/dashboard").json()
    assert dashboard["overview"]["total_requests"] >= 2
    assert "cost_savings_percentage" in dashboard["overview"]
    analytics = http.get("/analytics").json()
    assert analytics["by_complexity"]


def test_async_execute_runs_on_a_real_worker(http):
    """async: true answers 202 with a job id; the server's RQ worker runs it to success."""
    queued = http.post("/execute", json={"text": "List two fruits.", "async": True})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job_id"]
    deadline = time.monotonic() + 60
    while (job := http.get(f"/jobs/{job_id}").json())["status"] != "success":
        assert job["status"] in {"queued", "running"}, job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["result"]["response"]
    assert job["attempts"] == 1


def test_experiment_lifecycle(http):
    """Create and start an experiment, route units to it, ramp it, read results and export."""
    created = http.post(
        "/experiments",
        json={
            "key": "live-exp",
            "name": "Live experiment",
            "start": True,
            "arms": [
                {
                    "key": "control",
                    "strategy": "original_council",
                    "weight": 50,
                    "is_control": True,
                },
                {"key": "smart", "strategy": "smart_routing", "weight": 50},
            ],
        },
    )
    assert created.status_code == 201, created.text
    for unit in range(6):
        response = http.post(
            "/evaluate",
            json={"script": f"Script {unit}", "experiment": "live-exp", "unit_id": f"u{unit}"},
        )
        assert response.status_code == 200, response.text
    assert "live-exp" in [e["key"] for e in http.get("/experiments").json()["experiments"]]
    ramped = http.post("/experiments/live-exp/ramp", json={"traffic_percentage": 50})
    assert ramped.status_code == 200 and ramped.json()["traffic_percentage"] == 50
    results = http.get("/experiments/live-exp/results")
    assert results.status_code == 200, results.text
    assert "decision" in results.json()
    export = http.get("/experiments/live-exp/export")
    assert export.status_code == 200, export.text
    assert "schema_version" in export.json()
    assert "attachment" in export.headers["content-disposition"]
