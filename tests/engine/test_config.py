"""RouterConfig: frozen, validated, arm overrides."""

from __future__ import annotations

import dataclasses

import pytest

from routing_platform.engine.config import RouterConfig
from routing_platform.engine.errors import InvalidRequestError


def test_config_is_frozen():
    """Configuration is passed in and never mutated."""
    config = RouterConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.escalation_threshold = 0.1  # type: ignore[misc]


def test_arm_overrides_make_a_new_config():
    """with_overrides applies arm router params and leaves the original alone."""
    config = RouterConfig()
    changed = config.with_overrides(escalation_threshold="0.6", cost_optimization_mode=False)
    assert changed.escalation_threshold == 0.6
    assert changed.cost_optimization_mode is False
    assert config.escalation_threshold == 0.7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temperature": 1}, "unknown router parameter"),
        ({"escalation_threshold": 1.5}, "between 0 and 1"),
        ({"escalation_threshold": "high"}, "not a number"),
        ({"enable_escalation": "yes"}, "true or false"),
    ],
)
def test_bad_overrides_are_refused_with_a_message(overrides, message):
    """Unknown names and bad values raise InvalidRequestError saying what to fix."""
    with pytest.raises(InvalidRequestError, match=message):
        RouterConfig().with_overrides(**overrides)


def test_bad_provider_mode_is_refused():
    """Only auto, simulated and real are provider modes."""
    with pytest.raises(InvalidRequestError, match="auto, simulated or real"):
        RouterConfig(provider_mode="sometimes")
