"""The simulated request generator (pure)."""

from __future__ import annotations

import pytest

from experiments.simulation import simulated_requests


def test_requests_are_deterministic_and_well_formed():
    """The same seed gives the same requests; each has what its kind needs."""
    first = list(simulated_requests(count=200, units=20, seed=3))
    assert first == list(simulated_requests(count=200, units=20, seed=3))
    assert first != list(simulated_requests(count=200, units=20, seed=4))
    kinds = {request["kind"] for request in first}
    assert kinds == {"execute", "evaluate"}
    for request in first:
        payload = request["request_payload"]
        assert payload.get("script") if request["kind"] == "evaluate" else payload.get("text")
    assert len({request["unit_id"] for request in first}) <= 20
    task_types = {request["task_type"] for request in first if request["kind"] == "execute"}
    assert {"classification", "code", "reasoning"} <= task_types


def test_a_single_kind_can_be_asked_for():
    """kind='evaluate' gives only council evaluations; an unknown kind is refused."""
    assert {r["kind"] for r in simulated_requests(count=30, units=3, kind="evaluate")} == {
        "evaluate"
    }
    with pytest.raises(ValueError, match="kind must be one of"):
        list(simulated_requests(count=1, units=1, kind="stream"))
