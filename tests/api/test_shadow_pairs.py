"""Every entry point pairs the experiment's shadow share of its calls with a shadow twin.

The SDK facade (``smart_executor`` / ``smart_council``), the routing API (``execute`` /
``evaluate``) and the OpenAI-compatible ``/v1/chat/completions`` all record through
``routed_call_record``, which decides the twin by a hash of the call's idempotency key.
Keys are drawn from seeded generators here, so the pairs are the same on every run.
"""

from __future__ import annotations

import itertools
import random
import uuid

import django_rq
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from ninja.testing import TestAsyncClient

from api import openai_api as openai_module
from api.openai_api import openai_api
from api.routing_api import routing_api
from experiments.bucketing import in_sample
from experiments.models import RoutedCall
from experiments.services import routed_call_record
from routing_platform.routing.ab_testing import ab_test_manager
from routing_platform.routing.integration import smart_council, smart_executor
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db(transaction=True)

EXPERIMENT = "shadowed"
SHADOW_SHARE = 0.5
CALLS_PER_ENTRY_POINT = 12


@pytest.fixture
async def experiment(fake_redis, fake_async_redis, monkeypatch):
    """A running two-arm experiment with half its calls shadowed; seeded call keys; A/B on."""
    keys = random.Random(19)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=keys.getrandbits(128), version=4))
    counter = itertools.count()
    monkeypatch.setattr(openai_module, "_completion_id", lambda: f"chatcmpl-test{next(counter)}")
    monkeypatch.setattr(ab_test_manager, "enabled", True)
    yield await sync_to_async(make_experiment)(key=EXPERIMENT, shadow_percentage=SHADOW_SHARE * 100)
    await sync_to_async(connections.close_all)()


async def _sdk_execute(unit: str, **_: object) -> None:
    await smart_executor.execute(
        text="Classify: great service", task_type="classification", unit_id=unit
    )


async def _sdk_evaluate(unit: str, **_: object) -> None:
    await smart_council.evaluate_script("A cat learns to surf.", "comedy", unit_id=unit)


def _routing_api(path: str, body: dict):
    """A call of the routing API at ``path`` with ``body``, in the experiment, for a unit."""

    async def call(unit: str, *, auth_headers: dict, **_: object) -> None:
        response = await TestAsyncClient(routing_api).post(
            path, json={**body, "experiment": EXPERIMENT, "unit_id": unit}, headers=auth_headers
        )
        assert response.status_code == 200, response.content

    return call


async def _v1_chat(unit: str, *, auth_headers: dict, drain_records, **_: object) -> None:
    body = {
        "model": "router",
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "user": unit,
        "experiment": EXPERIMENT,
    }
    response = await TestAsyncClient(openai_api).post(
        "/chat/completions", json=body, headers=auth_headers
    )
    assert response.status_code == 200, response.content
    assert await drain_records() == 1


ENTRY_POINTS = {
    "sdk-execute": (_sdk_execute, "sdk"),
    "sdk-evaluate": (_sdk_evaluate, "sdk"),
    "api-execute": (_routing_api("/execute", {"text": "Summarise: the cat sat."}), "api"),
    "api-evaluate": (_routing_api("/evaluate", {"script": "A dog learns to ski."}), "api"),
    "v1-chat": (_v1_chat, "openai"),
}


def _primary_calls(source: str) -> list[RoutedCall]:
    return list(
        RoutedCall.objects.filter(source=source, is_shadow=False, experiment__key=EXPERIMENT)
        .select_related("arm", "paired_call__arm")
        .order_by("id")
    )


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
async def test_every_entry_point_pairs_the_shadow_share(
    entry_point, experiment, auth_headers, drain_records
):
    """Exactly the calls the shadow hash picks at the configured share get a queued twin on
    the other arm, with the same input, on the shadow queue; the others get none."""
    call_entry_point, source = ENTRY_POINTS[entry_point]
    for index in range(CALLS_PER_ENTRY_POINT):
        await call_entry_point(
            f"user-{index}", auth_headers=auth_headers, drain_records=drain_records
        )
    calls = await sync_to_async(_primary_calls)(source)
    assert len(calls) == CALLS_PER_ENTRY_POINT
    picked = [
        in_sample(seed=f"{EXPERIMENT}:shadow", unit_id=call.idempotency_key, share=SHADOW_SHARE)
        for call in calls
    ]
    assert 0 < sum(picked) < len(picked), "the seeded keys must exercise both outcomes"
    assert [call.paired_call_id is not None for call in calls] == picked
    shadow_jobs = await sync_to_async(lambda: django_rq.get_queue("shadow").job_ids)()
    twins = [call.paired_call for call in calls if call.paired_call_id]
    assert sorted(shadow_jobs) == sorted(twin.job_id for twin in twins)
    for call, twin in ((call, call.paired_call) for call in calls if call.paired_call_id):
        assert (twin.is_shadow, twin.status, twin.source) == (True, "queued", "shadow")
        assert twin.paired_call_id == call.pk
        assert twin.arm.key != call.arm.key
        assert twin.kind == call.kind and twin.unit_id == call.unit_id
        for field in ("text", "script", "messages"):
            assert twin.request_payload.get(field) == call.request_payload.get(field)


async def test_recording_a_call_again_adds_no_twin(experiment, auth_headers, drain_records):
    """Recording the same /v1 calls again (a drain job run twice) pairs nothing new, even
    after the shadow share was raised to 100% in between: the decision is made once."""
    for index in range(4):
        await _v1_chat(f"user-{index}", auth_headers=auth_headers, drain_records=drain_records)
    calls = await sync_to_async(_primary_calls)("openai")
    before = await RoutedCall.objects.filter(is_shadow=True).acount()
    assert 0 < before < len(calls)
    experiment.shadow_percentage = 100
    await experiment.asave(update_fields=["shadow_percentage"])
    for call in calls:
        await sync_to_async(routed_call_record)(
            kind=call.kind,
            source=call.source,
            request_payload=call.request_payload,
            result={"response": "again"},
            idempotency_key=call.idempotency_key,
            experiment=call.experiment_id,
            arm=call.arm_id,
            phase=call.phase_id,
        )
    assert await RoutedCall.objects.filter(is_shadow=True).acount() == before


async def _v1_post(auth_headers: dict, **fields: str):
    body = {"model": "router", "messages": [{"role": "user", "content": "hi"}], **fields}
    return await TestAsyncClient(openai_api).post(
        "/chat/completions", json=body, headers=auth_headers
    )


async def test_v1_experiment_needs_a_user(experiment, auth_headers):
    """/v1 with an experiment but no `user` is a 400 naming `user`, in OpenAI's error shape."""
    response = await _v1_post(auth_headers, experiment=EXPERIMENT)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "user"


async def test_v1_unknown_experiment_is_a_404(experiment, auth_headers):
    """/v1 naming an experiment that does not exist is a 404 that names the key."""
    response = await _v1_post(auth_headers, experiment="no-such-experiment", user="user-1")
    assert response.status_code == 404
    assert "no-such-experiment" in response.json()["error"]["message"]


async def test_a_dead_queue_fails_the_twin_not_the_call(redis_down, fake_async_redis, auth_headers):
    """With the job queue unreachable, the routed call still answers and is recorded; its
    twin is recorded as an error saying the queue was unavailable, so nothing is lost."""
    await sync_to_async(make_experiment)(key=EXPERIMENT, shadow_percentage=100)
    call = _routing_api("/execute", {"text": "Summarise: the cat sat."})
    await call("user-1", auth_headers=auth_headers)
    primary = await RoutedCall.objects.select_related("paired_call").aget(is_shadow=False)
    assert primary.status == "success" and primary.experiment_id is not None
    twin = primary.paired_call
    assert (twin.is_shadow, twin.status) == (True, "error")
    assert "unavailable" in twin.error_message
    await sync_to_async(connections.close_all)()
