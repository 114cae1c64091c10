"""The prompt features stay exactly what feature set 2 was when routers were trained on it:
the values of a fixed set of prompts, recorded from the first implementation, must not move
(a faster implementation must give the same numbers, or bump FEATURE_VERSION)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routing_platform.engine.quality.features import FEATURE_VERSION, prompt_features

REFERENCE = Path(__file__).parent / "data" / "prompt_features_v2.json"
CASES = json.loads(REFERENCE.read_text(encoding="utf-8"))


def test_reference_is_for_this_feature_version():
    assert FEATURE_VERSION == 2, "record a new reference file for the new feature set"
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_prompt_features_equal_the_recorded_values(case):
    features = prompt_features(case["prompt"])
    assert list(features) == list(case["features"])  # same names, same order
    for name, value in case["features"].items():
        assert features[name] == pytest.approx(value, abs=1e-12), name
