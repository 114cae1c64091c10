"""The official `openai` SDK against the platform served by a real uvicorn process."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.redis_server]


@pytest.fixture
def sdk(server_process):
    return openai.OpenAI(
        base_url=f"{server_process.base_url}/v1", api_key=server_process.token, max_retries=0
    )


def test_chat_completion_with_router_model(sdk, server_process):
    """model "router": a valid ChatCompletion with usage, x-router-* headers, and a record."""
    raw = sdk.chat.completions.with_raw_response.create(
        model="router", messages=[{"role": "user", "content": "Name three primary colours."}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-router-model"] == completion.model
    assert raw.headers["x-router-tier"] in {"mini", "standard", "premium"}
    assert raw.headers["x-router-escalated"] in {"true", "false"}
    assert float(raw.headers["x-router-cost-usd"]) > 0
    assert float(raw.headers["x-router-overhead-ms"]) >= 0
    recorded = server_process.wait_for(
        "SELECT COUNT(*) FROM experiments_routedcall WHERE idempotency_key = "
        f"'openai:{completion.id}' AND status = 'success' AND kind = 'chat'",
        1,
        timeout_s=60,
    )
    assert recorded == 1  # written by the server's RQ worker from the record left in Redis


def test_concrete_model_passes_through(sdk):
    """A concrete model name is answered by that model."""
    completion = sdk.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    assert completion.model == "claude-haiku-4-5"


def test_streaming_with_usage_in_the_final_chunk(sdk):
    """stream=True yields chunks whose text is the answer; the final chunk carries usage."""
    stream = sdk.chat.completions.create(
        model="router",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_models_list(sdk):
    """models.list() includes "router" and the catalog's models."""
    ids = [model.id for model in sdk.models.list()]
    assert ids[0] == "router"
    assert "gpt-4.1" in ids


def test_errors_map_to_the_sdk_exceptions(sdk, server_process):
    """Unknown model -> NotFoundError, bad parameter -> BadRequestError, bad key ->
    AuthenticationError; each with a message."""
    with pytest.raises(openai.NotFoundError, match="nope-model"):
        sdk.chat.completions.create(model="nope-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        sdk.chat.completions.create(
            model="router", messages=[{"role": "user", "content": "x"}], temperature=9
        )
    bad = openai.OpenAI(
        base_url=f"{server_process.base_url}/v1", api_key="rk_wrong_key", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        bad.models.list()


def test_feedback_on_a_completion_by_its_call_id(sdk, server_process):
    """The answer's x-router-call-id (read with with_raw_response) is the call to send
    feedback on; once the record is written, the feedback is counted in the quality report."""
    raw = sdk.chat.completions.with_raw_response.create(
        model="router", messages=[{"role": "user", "content": "Is this review positive? Loved it"}]
    )
    completion = raw.parse()
    call_id = raw.headers["x-router-call-id"]
    assert call_id == completion.id
    server_process.wait_for(
        f"SELECT COUNT(*) FROM experiments_routedcall WHERE idempotency_key = 'openai:{call_id}'",
        1,
        timeout_s=60,
    )
    headers = {"Authorization": f"Bearer {server_process.token}"}
    api = f"{server_process.base_url}/api/v1/routing"
    before = httpx.get(f"{api}/quality", headers=headers).json()["sources"]["feedback"]
    posted = httpx.post(
        f"{api}/calls/{call_id}/feedback",
        json={"score": 0.8, "comment": "good enough"},
        headers=headers,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["value"] == 0.8
    after = httpx.get(f"{api}/quality", headers=headers).json()["sources"]["feedback"]
    assert after["signals"] == before["signals"] + 1


def _feedback_when_recorded(api: str, call_id: str, headers: dict) -> httpx.Response:
    """POST thumbs up on ``call_id``, retrying the documented 404 of a /v1 call whose record
    the worker has not written yet (bounded: at most about 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        posted = httpx.post(
            f"{api}/calls/{call_id}/feedback", json={"thumbs": "up"}, headers=headers
        )
        if posted.status_code != 404 or time.monotonic() > deadline:
            return posted
        time.sleep(0.1)


def test_feedback_on_an_experiment_completion_shows_in_its_report(sdk, server_process):
    """A /v1 completion in a feedback experiment (extra_body experiment + user): its
    x-router-call-id takes a thumbs up, which the experiment report and its JSON export
    count for the arm the call ran."""
    headers = {"Authorization": f"Bearer {server_process.token}"}
    api = f"{server_process.base_url}/api/v1/routing"
    created = httpx.post(
        f"{api}/experiments",
        json={
            "key": "sdk-feedback",
            "name": "SDK feedback",
            # Its own unit space: the session's server keeps other tests' running "user"
            # experiments, and two running experiments may not claim the same units.
            "unit_type": "team",
            "start": True,
            "quality_signal": "feedback",
            "arms": [
                {"key": "control", "strategy": "original_council", "is_control": True},
                {"key": "smart", "strategy": "smart_routing"},
            ],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text

    raw = sdk.chat.completions.with_raw_response.create(
        model="router",
        messages=[{"role": "user", "content": "Is this review positive? Loved it"}],
        user="sdk-user-1",
        extra_body={"experiment": "sdk-feedback"},
    )
    call_id = raw.headers["x-router-call-id"]
    assert call_id == raw.parse().id
    posted = _feedback_when_recorded(api, call_id, headers)
    assert posted.status_code == 201, posted.text
    assert posted.json()["value"] == 1.0

    rows = server_process.query(
        "SELECT a.key FROM experiments_routedcall c JOIN experiments_arm a ON a.id = c.arm_id"
        " JOIN experiments_experiment e ON e.id = c.experiment_id"
        " WHERE c.idempotency_key = ? AND e.key = 'sdk-feedback'",
        (f"openai:{call_id}",),
    )
    assert len(rows) == 1, rows  # recorded in the experiment, under the user's arm
    arm = rows[0][0]

    report = httpx.get(f"{api}/experiments/sdk-feedback/results", headers=headers)
    assert report.status_code == 200, report.text
    quality = report.json()["quality"]
    assert quality["signal"] == "feedback"
    feedback = quality["signals"]["feedback"]["arms"]
    assert feedback[arm]["signals"] == 1 and feedback[arm]["sums"]["sum_y"] == 1.0
    assert sum(arm_feedback["signals"] for arm_feedback in feedback.values()) == 1
    export = httpx.get(f"{api}/experiments/sdk-feedback/export", headers=headers).json()
    assert export["quality"]["signals"]["feedback"]["arms"][arm]["sums"]["sum_y"] == 1.0
