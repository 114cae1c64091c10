"""_routing_metadata says which router decided: "learned", or "fallback" and why."""

from __future__ import annotations

import numpy as np
import pytest

from routing_platform.engine.learned import save_router
from routing_platform.engine.quality.training import train_router
from routing_platform.routing import integration
from routing_platform.routing.integration import smart_executor
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows
from tests.routing.test_integration import FakeManager

pytestmark = pytest.mark.usefixtures("clean_runtime")


@pytest.fixture(scope="module")
def router_path(tmp_path_factory):
    rows = synthetic_rows(150)
    router = train_router(
        [row["prompt"] for row in rows],
        np.array([row[STRONG] for row in rows], dtype=float),
        np.array([row[WEAK] for row in rows], dtype=float),
        domain=True,
    )
    return str(save_router(router, tmp_path_factory.mktemp("fallback") / "router.json")), rows[0][
        "prompt"
    ]


@pytest.fixture
def learned_settings(settings, router_path, monkeypatch):
    from routing_platform.engine import router as router_module

    monkeypatch.setattr(integration, "_ab_manager", lambda: FakeManager())
    monkeypatch.setattr(router_module, "_learned_cache", {})
    settings.ROUTER_MODEL_PATH = router_path[0]
    settings.ROUTER_FALLBACK_TIER = ""
    return settings


async def test_in_domain_prompt_is_routed_by_the_learned_router(learned_settings, router_path):
    """A prompt like the training prompts: router "learned", with the distance as reason."""
    result = await smart_executor.execute(text=router_path[1], task_type="analysis")
    metadata = result["_routing_metadata"]
    assert metadata["router"] == "learned"
    assert "within the threshold" in metadata["router_reason"]
    assert "strong_probability" in metadata


async def test_out_of_domain_prompt_falls_back_and_says_why(learned_settings):
    """A chat prompt of another domain: router "fallback", the reason names the distance."""
    result = await smart_executor.execute(
        text="Write a cheerful limerick about a cat who loves rainy Sundays.",
        task_type="creative",
    )
    metadata = result["_routing_metadata"]
    assert metadata["router"] == "fallback"
    assert metadata["router_reason"].startswith("out of domain: distance")


async def test_fallback_tier_setting_is_used(learned_settings):
    """ROUTER_FALLBACK_TIER=premium sends out-of-domain prompts to the premium tier."""
    learned_settings.ROUTER_FALLBACK_TIER = "premium"
    result = await smart_executor.execute(
        text="Write a cheerful limerick about a cat who loves rainy Sundays.",
        task_type="creative",
    )
    assert result["_routing_metadata"]["initial_tier"] == "premium"
