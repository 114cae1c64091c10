"""CallOutcome / RecordedError: the typed values a routed call ends with."""

from __future__ import annotations

import json

from routing_platform.engine.errors import InvalidRequestError, ProviderRateLimitError
from routing_platform.engine.outcome import CallOutcome, RecordedError


def test_outcome_reads_the_engine_result_once():
    result = {
        "response": "hi",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "finish_reason": "length",
        "_routing_metadata": {
            "tier": "mini",
            "strategy": "smart_routing",
            "cost": 0.0004,
            "latency_ms": 12.5,
            "confidence": 0.8,
            "escalated": True,
            "input_tokens": 10,
            "output_tokens": "7",
            "cached_tokens": None,
        },
    }
    outcome = CallOutcome.from_result(result)
    assert outcome.result is result
    assert (outcome.model, outcome.provider, outcome.tier) == ("gpt-4o-mini", "openai", "mini")
    assert (outcome.cost_usd, outcome.latency_ms, outcome.confidence) == (0.0004, 12.5, 0.8)
    assert outcome.escalated and outcome.finish_reason == "length"
    assert (outcome.input_tokens, outcome.output_tokens, outcome.cached_tokens) == (10, 7, 0)
    assert outcome.metadata["strategy"] == "smart_routing"


def test_outcome_of_a_result_without_metadata_has_defaults():
    outcome = CallOutcome.from_result({"response": "x", "_routing_metadata": "garbage"})
    assert outcome.model == "" and outcome.cost_usd == 0.0 and outcome.confidence is None
    assert outcome.finish_reason == "stop" and dict(outcome.metadata) == {}


def test_recorded_error_of_a_provider_error_keeps_kind_status_retryable_metadata():
    error = ProviderRateLimitError("openai", 429, "slow down", metadata={"cost": 0.01})
    recorded = RecordedError.from_exception(error)
    assert recorded.kind == "ProviderRateLimitError"
    assert recorded.message == "openai 429: slow down"
    assert recorded.retryable is True and recorded.status == 429
    assert recorded.metadata == {"cost": 0.01}
    assert str(recorded) == "openai 429: slow down"


def test_recorded_error_crosses_json_unchanged():
    recorded = RecordedError.from_exception(InvalidRequestError("empty", metadata={"a": 1}))
    back = RecordedError.from_payload(json.loads(json.dumps(recorded.as_payload())))
    assert back == recorded
    assert (back.retryable, back.status) == (False, None)


def test_recorded_error_reads_payloads_of_before_the_typed_fields():
    back = RecordedError.from_payload({"type": "JobFailed", "message": "gone", "metadata": None})
    assert (back.kind, back.message, back.retryable, back.status) == (
        "JobFailed",
        "gone",
        False,
        None,
    )
    assert dict(back.metadata) == {}
    assert RecordedError.from_payload({}).kind == "Error"
