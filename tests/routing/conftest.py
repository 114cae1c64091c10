"""Facade and runtime fixtures: fresh provider caches, no real keys unless a test sets them."""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_runtime(settings):
    """Every test starts from the simulator with the documented defaults and empty caches."""
    from routing_platform import runtime

    settings.OPENAI_API_KEY = ""
    settings.ANTHROPIC_API_KEY = ""
    settings.GEMINI_API_KEY = ""
    settings.OPENAI_COMPATIBLE_BASE_URL = ""
    settings.ROUTER_PROVIDER_MODE = "auto"
    settings.ENABLE_SMART_ROUTING = True
    settings.ROUTER_ESCALATION_THRESHOLD = 0.7
    settings.ROUTER_ENABLE_ESCALATION = True
    settings.ROUTER_COST_OPTIMIZATION = True
    settings.ROUTER_MODEL_PATH = ""
    settings.ROUTER_SIMULATED_LATENCY_MS = 0.0
    settings.ROUTER_PRICE_OVERRIDES = {}
    settings.OPENAI_COMPATIBLE_MODELS = []
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def upstream():
    from tests.engine.upstream import Upstream

    server = Upstream().start()
    yield server
    server.stop()
