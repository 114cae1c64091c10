"""`routing backtest` on graded outcomes (--scale), and train-router's embedding options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management.base import CommandError

from routing_platform.engine.quality.dataset import (
    DatasetError,
    OutcomeScale,
    detect_scale,
    load_dataset,
    parse_scale,
)
from tests.cli.test_backtest import MODELS, run
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows, write_csv


def graded_rows(n: int = 90) -> list[dict]:
    """The synthetic rows with 1-10 judge grades instead of 0/1 (right -> 7-10, wrong -> 1-4)."""
    rng = np.random.default_rng(3)
    rows = synthetic_rows(n)
    for row in rows:
        for model in (STRONG, WEAK):
            row[model] = int(rng.integers(7, 11) if row[model] else rng.integers(1, 5))
    return rows


@pytest.fixture
def graded(tmp_path):
    return write_csv(tmp_path / "graded.csv", graded_rows())


def test_graded_file_reports_quality_on_its_scale(graded):
    """A 1-10 file is detected as such: quality reads "x.xx on 1-10", never "828.1%"."""
    out, _ = run("backtest", "--dataset", str(graded), *MODELS, "--no-progress")
    assert "on 1-10" in out
    last = out.strip().splitlines()[-1]
    assert "weak quality" in last and "%" not in last.split(";")[0]


def test_given_scale_is_reported_and_in_the_json(graded):
    """--scale 0-10 is used as given, and the JSON report records it."""
    out, _ = run(
        "backtest", "--dataset", str(graded), *MODELS, "--scale", "0-10", "--json", "--no-progress"
    )
    report = json.loads(out)
    assert report["scale"] == {"low": 0.0, "high": 10.0, "detected": False}


@pytest.mark.parametrize(
    ("scale", "message"),
    [("ten", "not a range"), ("10-1", "low end must be below"), ("0-1", "outside the scale 0-1")],
)
def test_bad_scale_is_a_command_error(graded, scale, message):
    """A malformed scale, or one the scores do not fit, is a CommandError saying so."""
    with pytest.raises(CommandError, match=message):
        run("backtest", "--dataset", str(graded), *MODELS, "--scale", scale, "--no-progress")


def test_scale_detection_and_formatting(graded, tmp_path):
    """0/1 -> 0-1 (a share); 1-10 grades -> 1-10; parse_scale reads LOW-HIGH forms."""
    binary = load_dataset(write_csv(tmp_path / "binary.csv", synthetic_rows(30)))
    assert detect_scale(binary, STRONG, WEAK) == OutcomeScale(0.0, 1.0, detected=True)
    assert detect_scale(load_dataset(graded), STRONG, WEAK).label == "1-10"
    assert OutcomeScale(0.0, 1.0).is_share and not OutcomeScale(1.0, 10.0).is_share
    assert parse_scale(" 1 to 10 ") == OutcomeScale(1.0, 10.0)
    with pytest.raises(DatasetError, match="LOW-HIGH"):
        parse_scale("1-")


def test_train_router_records_embedding_and_backtest_reports_fallback(tmp_path):
    """train-router --embeddings stores the embedding and domain; a backtest of another
    domain's prompts with that file reports how many rows fell back."""
    bench = write_csv(tmp_path / "bench.csv", synthetic_rows(90))
    model = tmp_path / "router.json"
    out, _ = run(
        "train-router", "--dataset", str(bench), *MODELS, "--out", str(model),
        "--embeddings", "--folds", "3", "--no-progress",
    )  # fmt: skip
    assert "embedding wordllama/l2_supercat_256" in out and "features on" in out
    artifact = json.loads(model.read_text())
    assert artifact["embedding"]["name"] == "wordllama/l2_supercat_256"
    assert artifact["domain"]["threshold"] > 0
    # The prompt-length rule that routes prompts outside: 101 quantiles, on the score scale.
    rule = artifact["domain"]["length_rule"]
    assert len(rule["lengths"]) == len(rule["scores"]) == 101
    assert rule["scores"] == sorted(rule["scores"]) and 0 <= rule["scores"][0] <= 1
    other = synthetic_rows(40)
    chat = ["Write a limerick about a cat.", "Plan a week of vegetarian dinners for two."]
    for index, row in enumerate(other):
        row["prompt"] = f"{chat[index % 2]} Variation {index}."
    other_csv = write_csv(tmp_path / "other.csv", other)
    out, _ = run(
        "backtest", "--dataset", str(other_csv), *MODELS, "--router-file", str(model),
        "--json", "--no-progress",
    )  # fmt: skip
    fallback = json.loads(out)["fallback"]
    assert fallback["enabled"] is True and fallback["share"] > 0.9
    out, _ = run(
        "backtest", "--dataset", str(other_csv), *MODELS, "--router-file", str(model),
        "--no-ood-fallback", "--no-progress",
    )  # fmt: skip
    assert "fallback off" in out
