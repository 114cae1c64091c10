"""Small synthetic RouterBench-style data for the quality tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

STRONG = "big/strong-model"
WEAK = "small/weak-model"


def synthetic_rows(n: int = 120, seed: int = 7) -> list[dict]:
    """Rows where long, negated questions are the ones the weak model gets wrong."""
    rng = np.random.default_rng(seed)
    subjects = ["mmlu-alpha", "mmlu-beta", "mmlu-gamma", "mmlu-delta", "mmlu-epsilon", "gsm8k"]
    rows = []
    for index in range(n):
        hard = index % 3 == 0
        words = " ".join(f"word{rng.integers(0, 50)}" for _ in range(40 if hard else 6))
        question = f"Which of the following is NOT true about {words}?" if hard else words
        prompt = f"{question}\nA. one\nB. two\nC. three\nD. four\nAnswer:"
        weak_right = int(rng.random() < (0.25 if hard else 0.9))
        strong_right = int(rng.random() < (0.85 if hard else 0.95))
        answer = "The answer is B." if weak_right else "Let me think 2 + 2 = 5 so"
        rows.append(
            {
                "sample_id": f"s{index:04d}",
                "eval_name": subjects[index % len(subjects)],
                "prompt": prompt,
                STRONG: strong_right,
                WEAK: weak_right,
                f"{WEAK}|model_response": answer,
                f"{STRONG}|model_response": "B",
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    fieldnames = fieldnames or list(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def synthetic_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "synthetic.csv", synthetic_rows())
