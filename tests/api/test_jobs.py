"""The call-records drain job: what the OpenAI-compatible endpoint hands to Redis gets recorded."""

from __future__ import annotations

import json

import pytest

from api.recording import (
    FAILED_RECORDS_KEY,
    RECORDS_KEY,
    error_from_payload,
    error_payload,
    record_call_deferred,
)
from experiments.models import RoutedCall

pytestmark = pytest.mark.django_db(transaction=True)


def chat_fields(key: str, **overrides):
    fields = {
        "kind": "chat",
        "source": "openai",
        "request_payload": {"model": "router", "messages": [{"role": "user", "content": "hi"}]},
        "result": {
            "response": "hello",
            "model": "gpt-4.1-nano",
            "provider": "simulated",
            "_routing_metadata": {"tier": "mini", "cost": 0.0001, "baseline_cost": 0.001},
        },
        "error": None,
        "idempotency_key": key,
    }
    fields.update(overrides)
    return fields


async def test_deferred_records_wait_in_redis_until_drained(
    fake_async_redis, fake_queue, drain_records
):
    """With Redis up a record is one list entry plus one drain job; the job writes it once."""
    assert await record_call_deferred(**chat_fields("openai:a")) == "queued"
    assert await record_call_deferred(**chat_fields("openai:b")) == "queued"
    assert fake_queue.llen(RECORDS_KEY) == 2
    assert await RoutedCall.objects.acount() == 0
    import rq

    assert rq.Queue("default", connection=fake_queue).count == 1  # only when the list was empty
    assert await drain_records() == 2
    assert fake_queue.llen(RECORDS_KEY) == 0
    calls = [c async for c in RoutedCall.objects.order_by("id")]
    assert [c.idempotency_key for c in calls] == ["openai:a", "openai:b"]
    assert calls[0].cost_usd > 0


async def test_a_payload_drained_twice_is_recorded_once(
    fake_async_redis, fake_queue, drain_records
):
    """A worker killed after recording but before removing leaves the payload; the next
    drain records nothing new."""
    await record_call_deferred(**chat_fields("openai:twice"))
    raw = fake_queue.lindex(RECORDS_KEY, -1)
    await drain_records()
    fake_queue.rpush(RECORDS_KEY, raw)
    await drain_records()
    assert await RoutedCall.objects.filter(idempotency_key="openai:twice").acount() == 1


async def test_invalid_payload_moves_aside(fake_async_redis, fake_queue, drain_records):
    """A payload the service refuses goes to the failed list; the others are still recorded."""
    fake_queue.lpush(RECORDS_KEY, json.dumps(chat_fields("openai:bad", kind="nonsense")))
    await record_call_deferred(**chat_fields("openai:good"))
    assert await drain_records() == 1
    assert fake_queue.llen(FAILED_RECORDS_KEY) == 1
    assert await RoutedCall.objects.filter(idempotency_key="openai:good").aexists()


async def test_errors_keep_their_type_and_metadata(fake_async_redis, fake_queue, drain_records):
    """A failed call is recorded as an error with the engine error's type name."""
    from routing_platform.engine.errors import UnknownModelError

    error = UnknownModelError("nope", metadata={"model": "nope"})
    rebuilt = error_from_payload(json.loads(json.dumps(error_payload(error))))
    assert rebuilt.kind == "UnknownModelError"
    assert rebuilt.metadata == {"model": "nope"}
    await record_call_deferred(**chat_fields("openai:err", result=None, error=error))
    await drain_records()
    call = await RoutedCall.objects.aget(idempotency_key="openai:err")
    assert (call.status, call.error_type) == ("error", "UnknownModelError")


async def test_redis_down_records_inline(redis_down, settings):
    """With Redis unreachable and ROUTER_REQUIRE_DURABLE_REDIS=sync the record is written
    before the call returns (the default, warn, defers it: tests/api/test_record_writer.py)."""
    settings.ROUTER_REQUIRE_DURABLE_REDIS = "sync"
    assert await record_call_deferred(**chat_fields("openai:inline")) == "recorded"
    assert await RoutedCall.objects.filter(idempotency_key="openai:inline").aexists()
