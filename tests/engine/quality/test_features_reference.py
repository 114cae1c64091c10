"""The prompt features stay exactly what each feature set was when routers were trained on
it: the values of a fixed set of prompts, recorded from the first implementation of the set,
must not move (a faster implementation must give the same numbers, or bump FEATURE_VERSION
and record a new reference file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routing_platform.engine.quality.features import (
    FEATURE_VERSION,
    FEATURE_VERSIONS,
    prompt_features,
)
from routing_platform.engine.quality.prompt_text import WINDOW_CHARS, window

DATA = Path(__file__).parent / "data"
CASES = {
    version: json.loads((DATA / f"prompt_features_v{version}.json").read_text(encoding="utf-8"))
    for version in FEATURE_VERSIONS
}
LENGTHS = ("prompt_chars_log", "question_chars_log", "question_words_log", "question_lines_log")


def test_every_feature_set_has_a_reference():
    assert FEATURE_VERSION == 4 and FEATURE_VERSIONS == (2, 3, 4)
    assert all(len(cases) >= 30 for cases in CASES.values())
    # The windowed sets' references hold prompts longer than their window.
    for version in (3, 4):
        assert sum(len(case["prompt"]) > 2 * WINDOW_CHARS for case in CASES[version]) >= 5


@pytest.mark.parametrize(
    ("version", "case"),
    [(version, case) for version, cases in CASES.items() for case in cases],
    ids=[f"v{version}-{i}" for version, cases in CASES.items() for i in range(len(cases))],
)
def test_prompt_features_equal_the_recorded_values(version, case):
    features = prompt_features(case["prompt"], version)
    assert list(features) == list(case["features"])  # same names, same order
    for name, value in case["features"].items():
        assert features[name] == pytest.approx(value, abs=1e-12), name


def test_set_3_is_set_2_on_prompts_within_the_window():
    short = [case["prompt"] for case in CASES[2] if len(case["prompt"]) <= 2 * WINDOW_CHARS]
    assert len(short) >= 25
    for prompt in short:
        assert prompt_features(prompt, 3) == prompt_features(prompt, 2)


@pytest.mark.parametrize("version", [3, 4])
def test_windowed_sets_read_only_the_window_but_measure_the_whole_prompt(version):
    head = "Tom buys 3 apples for $2 each. " * 10
    tail = " How many dollars does he spend?"
    short_middle = head + "He walks home.\n" * 20 + tail
    long_middle = head + "He walks home.\n" * 200 + tail
    short, long = prompt_features(short_middle, version), prompt_features(long_middle, version)
    assert window(short_middle) == window(long_middle)
    for name in LENGTHS:
        assert long[name] > short[name], name  # the lengths are the whole prompt's
    assert {k: v for k, v in short.items() if k not in LENGTHS} == {
        k: v for k, v in long.items() if k not in LENGTHS
    }
    assert prompt_features(long_middle, 2)["sentences_log"] > long["sentences_log"]


def test_window_keeps_head_and_tail():
    text = "a" * WINDOW_CHARS + "b" * 10 + "c" * WINDOW_CHARS
    assert window(text) == "a" * WINDOW_CHARS + "\n" + "c" * WINDOW_CHARS
    assert window("short") == "short"


def test_an_unknown_feature_set_is_refused():
    with pytest.raises(ValueError, match="unknown feature set 1"):
        prompt_features("Hi", 1)
