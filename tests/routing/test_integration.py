"""The drop-in API: council, smart_council, smart_executor, and the A/B hooks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from routing_platform.engine.errors import InvalidRequestError
from routing_platform.routing import integration
from routing_platform.routing.integration import council, smart_council, smart_executor

pytestmark = pytest.mark.usefixtures("clean_runtime")

SCRIPT = "Hook: you are wasting money on subscriptions. Here are three to cancel today. " * 3


@dataclass(frozen=True)
class FakeRoute:
    experiment_key: str = "exp-1"
    arm_key: str = "control"
    strategy: str = "original_council"
    router_params: dict | None = None
    experiment_id: int = 1
    arm_id: int = 2
    phase_id: int = 3


class FakeManager:
    def __init__(self, route=None, fail_route=False) -> None:
        self.route = route
        self.fail_route = fail_route
        self.routed: list[dict] = []
        self.recorded: list[dict] = []

    async def aroute(self, *, unit_id, experiment, kind):
        self.routed.append({"unit_id": unit_id, "experiment": experiment, "kind": kind})
        if self.fail_route:
            raise RuntimeError("experiment store down")
        return self.route

    async def arecord(self, **kwargs):
        self.recorded.append(kwargs)


@pytest.fixture
def manager(monkeypatch):
    fake = FakeManager()
    monkeypatch.setattr(integration, "_ab_manager", lambda: fake)
    return fake


async def test_original_council_keeps_the_original_shape(manager):
    """council.evaluate_script: verdict, final_score, feedback; no routing metadata."""
    result = await council.evaluate_script(SCRIPT, "finance")
    assert {"verdict", "final_score", "feedback"} <= set(result)
    assert "_routing_metadata" not in result


async def test_smart_council_has_the_same_keys_plus_metadata(manager):
    """The drop-in replacement adds only _routing_metadata."""
    original = await council.evaluate_script(SCRIPT, "finance")
    smart = await smart_council.evaluate_script(SCRIPT, "finance")
    assert {"verdict", "final_score", "feedback"} <= set(smart)
    assert smart["_routing_metadata"]["strategy"] == "smart_routing"
    assert smart["_routing_metadata"]["cost"] < smart["_routing_metadata"]["baseline_cost"]
    assert isinstance(original["final_score"], float)


async def test_smart_executor_returns_response_model_provider_metadata(manager):
    """execute(text=..., task_type=...) has the documented shape and is recorded."""
    result = await smart_executor.execute(text="Summarise: the cat sat.", task_type="summarization")
    assert set(result) == {"response", "model", "provider", "_routing_metadata"}
    (record,) = manager.recorded
    assert record["kind"] == "execute"
    assert record["result"] is result and record["error"] is None
    assert record["source"] == "sdk"
    assert record["request_payload"]["text"] == "Summarise: the cat sat."


async def test_disabled_smart_routing_behaves_as_the_original(settings, manager):
    """ENABLE_SMART_ROUTING=false: same call, original behaviour, strategy says so."""
    settings.ENABLE_SMART_ROUTING = False
    result = await smart_council.evaluate_script(SCRIPT, "finance")
    assert result["_routing_metadata"]["strategy"] == "original_council"
    assert result["_routing_metadata"]["council_size"] == 3
    out = await smart_executor.execute(text="hi", task_type="classification")
    assert out["_routing_metadata"]["strategy"] == "original_council"


async def test_an_experiment_arm_decides_the_strategy_and_is_recorded(manager):
    """aroute's arm (original council here) is used, and the route is passed to arecord."""
    manager.route = FakeRoute(strategy="original_council")
    result = await smart_council.evaluate_script(SCRIPT, "finance", unit_id="user-42")
    assert result["_routing_metadata"]["strategy"] == "original_council"
    assert result["_routing_metadata"]["experiment"] == "exp-1"
    assert manager.routed == [{"unit_id": "user-42", "experiment": None, "kind": "evaluate"}]
    (record,) = manager.recorded
    assert record["route"] is manager.route and record["unit_id"] == "user-42"


async def test_arm_router_params_reach_the_router(manager):
    """A smart arm with escalation disabled never escalates."""
    manager.route = FakeRoute(strategy="smart_routing", router_params={"enable_escalation": False})
    for i in range(20):
        out = await smart_executor.execute(
            text=f"Label this #{i}", task_type="classification", unit_id="u"
        )
        assert not out["_routing_metadata"]["escalated"]


async def test_errors_are_recorded_then_raised(manager):
    """A failing call is recorded with its error and still raised to the caller."""
    with pytest.raises(InvalidRequestError):
        await smart_executor.execute(text="", task_type="analysis")
    (record,) = manager.recorded
    assert record["error"].kind == "InvalidRequestError" and record["result"] is None


async def test_a_broken_experiment_store_never_fails_the_call(monkeypatch):
    """aroute raising is logged; the call runs with the default strategy."""
    fake = FakeManager(fail_route=True)
    monkeypatch.setattr(integration, "_ab_manager", lambda: fake)
    out = await smart_executor.execute(text="hi", task_type="classification")
    assert out["_routing_metadata"]["strategy"] == "smart_routing"


async def test_works_without_the_ab_module(monkeypatch):
    """No A/B facade at all: the integration still routes."""
    monkeypatch.setattr(integration, "_ab_manager", lambda: None)
    out = await smart_executor.execute(text="hi", task_type="classification")
    assert out["provider"] == "simulated"
