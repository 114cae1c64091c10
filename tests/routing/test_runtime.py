"""The settings -> engine bridge: router_config, run_execute, run_evaluate (no database)."""

from __future__ import annotations

import pytest

from routing_platform import runtime
from routing_platform.engine.errors import (
    AllProvidersFailedError,
    InvalidRequestError,
    ProviderNotConfiguredError,
    UnknownModelError,
)
from tests.engine.test_providers_http import OPENAI_OK
from tests.engine.upstream import Reply

pytestmark = pytest.mark.usefixtures("clean_runtime")

CONTRACT_KEYS = {
    "strategy",
    "task_type",
    "complexity",
    "complexity_score",
    "tier",
    "model",
    "provider",
    "models_tried",
    "escalated",
    "escalation_reason",
    "confidence",
    "input_tokens",
    "output_tokens",
    "cost",
    "baseline_cost",
    "savings",
    "latency_ms",
    "simulated",
}


def test_router_config_reads_settings_and_applies_arm_overrides(settings):
    """Settings give the defaults; arm router params override them."""
    settings.ROUTER_ESCALATION_THRESHOLD = 0.65
    settings.ROUTER_MAX_RETRIES = 4
    config = runtime.router_config()
    assert config.escalation_threshold == 0.65
    assert config.max_retries == 4
    assert runtime.router_config(escalation_threshold=0.9).escalation_threshold == 0.9


def test_router_config_refuses_unknown_parameters():
    """A typo in an arm's router params is a clear error, not silently ignored."""
    with pytest.raises(InvalidRequestError, match="unknown router parameter"):
        runtime.router_config(escalation_treshold=0.5)


async def test_run_execute_without_keys_uses_the_simulator_with_full_metadata():
    """No key set (auto): deterministic simulated answer carrying every contract key."""
    result = await runtime.run_execute(text="Classify: 'great phone'", task_type="classification")
    assert set(result) == {"response", "model", "provider", "_routing_metadata"}
    metadata = result["_routing_metadata"]
    assert set(metadata) >= CONTRACT_KEYS
    assert result["provider"] == metadata["provider"] == "simulated"
    assert metadata["simulated"] is True
    assert metadata["strategy"] == "smart_routing"
    assert metadata["tier"] == "mini" or metadata["escalated"]
    assert metadata["baseline_cost"] > metadata["cost"] > 0
    assert metadata["savings"]["usd"] == pytest.approx(metadata["baseline_cost"] - metadata["cost"])
    assert 0 <= metadata["confidence"] <= 1
    assert runtime.simulated()


async def test_run_execute_is_deterministic():
    """Same prompt, same seed: the same model, tokens and cost."""
    a = await runtime.run_execute(text="Explain TCP slow start", task_type="analysis")
    b = await runtime.run_execute(text="Explain TCP slow start", task_type="analysis")
    assert a == b


async def test_original_strategy_calls_premium_directly():
    """strategy=original_council: the premium model, cost equals baseline, 0% savings."""
    result = await runtime.run_execute(
        text="hi", task_type="classification", strategy="original_council"
    )
    metadata = result["_routing_metadata"]
    assert metadata["strategy"] == "original_council"
    assert metadata["tier"] == "premium"
    assert metadata["cost"] == metadata["baseline_cost"]
    assert metadata["savings"]["percentage"] == 0


async def test_disabling_smart_routing_is_the_rollback(settings):
    """ENABLE_SMART_ROUTING=false turns smart requests into the original path."""
    settings.ENABLE_SMART_ROUTING = False
    result = await runtime.run_execute(text="hi", task_type="classification")
    assert result["_routing_metadata"]["strategy"] == "original_council"
    evaluation = await runtime.run_evaluate(script="A script", niche="tech")
    assert evaluation["_routing_metadata"]["strategy"] == "original_council"


async def test_pass_through_model_is_not_routed():
    """A concrete model name is called as is."""
    result = await runtime.run_execute(text="hi", model="claude-haiku-4-5")
    assert result["model"] == "claude-haiku-4-5"
    assert result["_routing_metadata"]["models_tried"] == ["claude-haiku-4-5"]
    assert result["_routing_metadata"]["tier"] == "standard"


async def test_unknown_model_is_a_clear_error():
    """An unknown model name raises UnknownModelError naming it."""
    with pytest.raises(UnknownModelError, match="gpt-17"):
        await runtime.run_execute(text="hi", model="gpt-17")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "text is empty"),
        ({"text": "hi", "task_type": "poetry"}, "task_type='poetry' is not known"),
        ({"text": "hi", "strategy": "yolo"}, "strategy='yolo' is not known"),
        ({"text": "hi", "max_tokens": 0}, "max_tokens"),
        ({"text": "hi", "temperature": 9}, "temperature"),
        ({"text": "hi", "temperature": "warm"}, "temperature"),
        ({"text": "hi", "max_tokens": True}, "max_tokens"),
        ({"text": "hi", "max_tokens": 2.5}, "max_tokens"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"text": "hi", "router_params": {"nope": 1}}, "unknown router parameter"),
    ],
)
async def test_bad_requests_are_invalid_request_errors(kwargs, message):
    """Bad input is an InvalidRequestError whose message says what to fix."""
    with pytest.raises(InvalidRequestError, match=message):
        await runtime.run_execute(**kwargs)


async def test_messages_are_accepted():
    """Chat messages work like text; the user turns are classified."""
    result = await runtime.run_execute(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        task_type="classification",
    )
    assert result["response"]


async def test_run_evaluate_both_strategies_share_the_result_shape():
    """Both strategies return verdict, final_score (0-100), feedback and metadata."""
    script = "Hook: three money mistakes you make every month. " * 5
    smart = await runtime.run_evaluate(script=script, niche="finance")
    original = await runtime.run_evaluate(
        script=script, niche="finance", strategy="original_council"
    )
    for result in (smart, original):
        assert {"verdict", "final_score", "feedback", "_routing_metadata"} <= set(result)
        assert 0 <= result["final_score"] <= 100
        assert set(result["_routing_metadata"]) >= CONTRACT_KEYS
    assert original["_routing_metadata"]["council_size"] == 3
    assert smart["_routing_metadata"]["baseline_cost"] == pytest.approx(
        original["_routing_metadata"]["cost"], rel=0.5
    )
    assert smart["_routing_metadata"]["cost"] < original["_routing_metadata"]["cost"]


async def test_fixed_simulated_latency_setting_is_used(settings):
    """ROUTER_SIMULATED_LATENCY_MS makes every simulated attempt take that long."""
    settings.ROUTER_SIMULATED_LATENCY_MS = 3.0
    result = await runtime.run_execute(text="hi", task_type="classification")
    attempts = result["_routing_metadata"]["attempts"]
    assert all(a["latency_ms"] == 3.0 for a in attempts)


async def test_real_mode_without_keys_names_the_missing_keys(settings):
    """ROUTER_PROVIDER_MODE=real and no key: the users' familiar 'not set' messages."""
    settings.ROUTER_PROVIDER_MODE = "real"
    with pytest.raises(AllProvidersFailedError) as info:
        await runtime.run_execute(text="hi")
    assert "OPENAI_API_KEY environment variable not set" in str(info.value)
    assert "ANTHROPIC_API_KEY environment variable not set" in str(info.value)


async def test_a_real_key_switches_to_real_providers(settings, upstream):
    """With OPENAI_API_KEY set, calls go to OPENAI_BASE_URL with the key; no simulator."""
    settings.OPENAI_API_KEY = "sk-real-test-key-000"
    settings.OPENAI_BASE_URL = upstream.url
    upstream.script(Reply(200, OPENAI_OK))
    result = await runtime.run_execute(text="Capital of France?", task_type="classification")
    assert result["provider"] == "openai"
    assert result["response"] == "Paris."
    assert result["_routing_metadata"]["simulated"] is False
    assert upstream.received[0].headers["authorization"] == "Bearer sk-real-test-key-000"
    assert not runtime.simulated()


async def test_unconfigured_provider_model_says_which_key_is_missing(settings, upstream):
    """Only OpenAI configured, a Claude model asked for: ANTHROPIC_API_KEY ... not set."""
    settings.OPENAI_API_KEY = "sk-real-test-key-000"
    settings.OPENAI_BASE_URL = upstream.url
    with pytest.raises(
        ProviderNotConfiguredError, match="ANTHROPIC_API_KEY environment variable not set"
    ):
        await runtime.run_execute(text="hi", model="claude-sonnet-4-5")


async def test_simulated_mode_wins_over_keys(settings):
    """ROUTER_PROVIDER_MODE=simulated uses the simulator even with keys set."""
    settings.OPENAI_API_KEY = "sk-real-test-key-000"
    settings.ROUTER_PROVIDER_MODE = "simulated"
    result = await runtime.run_execute(text="hi", task_type="classification")
    assert result["provider"] == "simulated"


async def test_price_overrides_setting_changes_the_cost(settings):
    """ROUTER_PRICE_OVERRIDES replaces genai-prices for the named model."""
    settings.ROUTER_PRICE_OVERRIDES = {"gpt-4.1": {"input_mtok": 0, "output_mtok": 0}}
    result = await runtime.run_execute(
        text="hi", task_type="classification", strategy="original_council"
    )
    assert result["model"] == "gpt-4.1"
    assert result["_routing_metadata"]["cost"] == 0


def test_bad_price_overrides_are_a_configuration_error(settings):
    """A malformed override says what shape is expected."""
    from django.core.exceptions import ImproperlyConfigured

    settings.ROUTER_PRICE_OVERRIDES = {"gpt-4.1": {"input_mtok": -1, "output_mtok": 2}}
    with pytest.raises(ImproperlyConfigured, match="input_mtok and output_mtok"):
        runtime.router_config()


async def test_openai_compatible_server_serves_its_tier_first_at_zero_cost(settings, upstream):
    """OPENAI_COMPATIBLE_*: a local model tagged @mini is preferred for mini and costs $0."""
    settings.OPENAI_COMPATIBLE_BASE_URL = upstream.url
    settings.OPENAI_COMPATIBLE_MODELS = ["llama3:8b@mini"]
    upstream.script(Reply(200, OPENAI_OK))
    result = await runtime.run_execute(text="Label: spam?", task_type="classification")
    metadata = result["_routing_metadata"]
    assert result["model"] == "llama3:8b"
    assert result["provider"] == "openai_compatible"
    assert metadata["cost"] == 0
    assert metadata["baseline_model"] in {"gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-pro"}
    assert upstream.received[0].body["model"] == "llama3:8b"


async def test_errors_carry_the_metadata_known_when_they_failed(settings):
    """A failed smart call's error says its strategy, task type, complexity and models tried."""
    settings.ROUTER_PROVIDER_MODE = "real"
    with pytest.raises(AllProvidersFailedError) as info:
        await runtime.run_execute(text="Label: spam?", task_type="classification")
    metadata = info.value.metadata
    assert metadata["strategy"] == "smart_routing"
    assert metadata["task_type"] == "classification"
    assert metadata["complexity"] == "simple"


def test_model_catalog_lists_what_calls_can_use(settings):
    """Self-hosted models are listed (first in their tier) only when their server is configured."""
    settings.OPENAI_COMPATIBLE_MODELS = ["llama3:8b@standard"]
    assert "llama3:8b" not in runtime.model_catalog()
    settings.OPENAI_COMPATIBLE_BASE_URL = "http://127.0.0.1:9/v1"
    catalog = runtime.model_catalog()
    assert catalog.models_for("standard")[0].name == "llama3:8b"
    assert "gpt-4.1" in catalog
