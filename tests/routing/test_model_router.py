"""The facade ModelRouter: settings defaults and mutable knobs, as in the user's guide."""

from __future__ import annotations

import pytest

from routing_platform.routing import ModelRouter

pytestmark = pytest.mark.usefixtures("clean_runtime")

MEDIUM = "Analyze the trade-offs between a monolith and microservices for a small startup."


def test_defaults_come_from_settings(settings):
    """Unset arguments follow ROUTER_* settings."""
    settings.ROUTER_ESCALATION_THRESHOLD = 0.55
    settings.ROUTER_COST_OPTIMIZATION = False
    router = ModelRouter()
    assert router.escalation_threshold == 0.55
    assert router.cost_optimization_mode is False


def test_guide_constructor_and_mutable_attributes():
    """ModelRouter(escalation_threshold=0.6, cost_optimization_mode=True), then change them."""
    router = ModelRouter(escalation_threshold=0.6, cost_optimization_mode=True)
    assert router.escalation_threshold == 0.6
    assert router.route_decision(MEDIUM, "analysis")["tier"] == "standard"
    router.escalation_threshold = 0.8
    router.cost_optimization_mode = False
    assert router.escalation_threshold == 0.8
    decision = router.route_decision(MEDIUM, "analysis")
    assert decision["tier"] == "premium"
    assert "cost optimization off" in decision["reasons"][-1]


async def test_router_executes_with_its_own_threshold():
    """A threshold of 0 never escalates; of 1 always climbs to premium."""
    lenient = ModelRouter(escalation_threshold=0.0)
    out = await lenient.execute(text="Label: spam or not?", task_type="classification")
    assert out["_routing_metadata"]["models_tried"] == [out["model"]]
    strict = ModelRouter(escalation_threshold=1.0)
    out = await strict.execute(text="Label: spam or not?", task_type="classification")
    assert out["_routing_metadata"]["tier"] == "premium"
    assert len(out["_routing_metadata"]["models_tried"]) == 3


async def test_router_evaluates_scripts():
    """router.evaluate_script is the smart council with this router's settings."""
    result = await ModelRouter().evaluate_script("Hook: a short script", "tech")
    assert result["_routing_metadata"]["strategy"] == "smart_routing"
