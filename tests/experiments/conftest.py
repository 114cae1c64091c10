"""Fixtures of the experiments tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="ramp-owner", password="pw-for-tests-only", is_staff=True, is_superuser=True
    )


@pytest.fixture
def fake_engine(monkeypatch):
    """Replace the runtime's run_execute / run_evaluate with canned results (recording
    each call), so experiments tests exercise recording, not the engine."""
    from routing_platform import runtime
    from tests.experiments.factories import engine_result

    calls: list[dict] = []

    async def run_execute(**kwargs):
        calls.append({"fn": "execute", **kwargs})
        return engine_result(strategy=kwargs.get("strategy") or "smart_routing")

    async def run_evaluate(**kwargs):
        calls.append({"fn": "evaluate", **kwargs})
        return engine_result(strategy=kwargs.get("strategy") or "smart_routing", kind="evaluate")

    monkeypatch.setattr(runtime, "run_execute", run_execute)
    monkeypatch.setattr(runtime, "run_evaluate", run_evaluate)
    return calls
