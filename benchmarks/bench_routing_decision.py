"""Routing decision overhead: classify + choose a tier, in process (target p99 <= 0.2 ms).

The corpus mixes synthetic prompts of every task type and length (one line to ~8,000
characters) with real MMLU and GSM8K prompts from ../shared/data/routellm/ when present.
Each run times every decision with perf_counter_ns; the figures are medians over runs.
A pure-Python no-op call is timed in the same process as the yardstick (ratio column).
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from pathlib import Path

from routing_platform.engine.classifier import TASK_TYPES
from routing_platform.engine.quality.embedding import embedding_input, get_embedder
from routing_platform.engine.quality.features import FEATURE_VERSION, prompt_features

TITLE = "Routing decision (classify + choose model), in process"
TARGET_P99_MS = 0.2

SHARED = Path(
    os.environ.get(
        "ROUTING_SHARED_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    )
)
LEARNED_MAX_CHARS = 2000
TRAINING_ROWS = 1500
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _corpus(limit: int) -> list[tuple[str, str]]:
    prompts: list[tuple[str, str]] = []
    base = [
        "Is this review positive? 'Battery died after a day.'",
        "Extract every date from: the meeting moved from 3 May to 12 June 2025.",
        "Summarize the following report for an executive audience. " + "Revenue grew 4%. " * 40,
        "Write a short poem about the sea at dawn.",
        "Analyze the trade-offs of event sourcing for an order system; consider failure modes.",
        "Refactor this function and explain the edge cases:\n```python\ndef f(x):\n    return [i for i in x]\n```",
        "Prove step by step that the sum of the first n odd numbers is n^2, then generalise. " * 6,
        "Design a distributed rate limiter; compare algorithms, consistency and complexity. " * 25,
    ]
    for index, text in enumerate(base):
        prompts.append((TASK_TYPES[index % len(TASK_TYPES)], text))
    for name, task in (("mmlu_dev.csv", "reasoning"), ("gsm8k_dev.csv", "reasoning")):
        path = SHARED / "routellm" / name
        if path.exists():
            with path.open(newline="") as handle:
                for row_index, row in enumerate(csv.DictReader(handle)):
                    if row_index >= limit // 2:
                        break
                    prompts.append(
                        (task if name.startswith("gsm8k") else "analysis", row["prompt"])
                    )
    return prompts


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _one_run(router, corpus: list[tuple[str, str]], decisions: int) -> tuple[float, float, float]:
    timings = []
    clock = time.perf_counter_ns
    n = len(corpus)
    for i in range(decisions):
        task, text = corpus[i % n]
        started = clock()
        router.choose(text, task)
        timings.append(clock() - started)
    timings.sort()
    noop_timings = []
    for _ in range(2000):
        started = clock()
        noop_timings.append(clock() - started)
    return (
        _percentile(timings, 0.5) / 1e6,
        _percentile(timings, 0.99) / 1e6,
        statistics.median(noop_timings) / 1e6,
    )


def _learned_routers() -> dict[str, object]:
    """Learned routers trained on part of the dev files (out-of-domain summary on; one
    with embedding features too), or {} when the data is absent."""
    from routing_platform.engine.quality.dataset import concat_datasets, load_dataset
    from routing_platform.engine.quality.routers import task_types
    from routing_platform.engine.quality.training import train_router

    paths = [SHARED / "routellm" / name for name in ("mmlu_dev.csv", "gsm8k_dev.csv")]
    if not all(path.exists() for path in paths):
        return {}
    parts = [load_dataset(path, models=[STRONG, WEAK]) for path in paths]
    dataset = concat_datasets([part.subset(range(0, len(part), 3)) for part in parts])
    dataset = dataset.subset(range(min(TRAINING_ROWS, len(dataset))))
    common = {
        "task_types": task_types(dataset),
        "domain": True,
    }
    return {
        label: train_router(
            dataset.prompts,
            dataset.score(STRONG),
            dataset.score(WEAK),
            embeddings=embeddings,
            **common,
        )
        for label, embeddings in (("learned", False), ("learned + embedding features", True))
    }


class _EmbeddingOnly:
    """The embedding's part of a decision: WordLlama embedding + out-of-domain distance."""

    def __init__(self, learned) -> None:
        self.embedder = get_embedder()
        self.domain = learned.domain
        self.version = learned.feature_version

    def choose(self, text: str, task: str) -> bool:
        vector = self.embedder.embed(embedding_input(text, self.version))
        return self.domain.distance(vector) <= self.domain.threshold


class _FeaturesOnly:
    """The hand-crafted prompt features' part of a decision, in the default feature set."""

    version = FEATURE_VERSION

    def choose(self, text: str, task: str) -> dict:
        return prompt_features(text, self.version)


def _learned_figures(corpus, decisions: int, runs: int) -> list[dict]:
    from routing_platform.engine.config import RouterConfig
    from routing_platform.engine.router import ModelRouter

    short = [(task, text) for task, text in corpus if len(text) <= LEARNED_MAX_CHARS]
    figures = []
    learned_routers = _learned_routers()
    deciders = {
        label: ModelRouter(RouterConfig(), learned_router=learned)
        for label, learned in learned_routers.items()
    }
    if learned_routers:
        deciders["WordLlama embedding + out-of-domain check alone"] = _EmbeddingOnly(
            learned_routers["learned"]
        )
        deciders["prompt features alone"] = _FeaturesOnly()
    for label, router in deciders.items():
        _one_run(router, short, 500)  # warm-up: loads WordLlama, fills the word cache
        results = [_one_run(router, short, decisions) for _ in range(runs)]
        p99 = statistics.median(r[1] for r in results)
        p50 = statistics.median(r[0] for r in results)
        figures.append(
            {
                "metric": f"routing decision p99, {label} (prompts <= {LEARNED_MAX_CHARS} chars)",
                "value": round(p99, 4),
                "unit": "ms",
                "target": f"<= {TARGET_P99_MS} ms",
                "met": p99 <= TARGET_P99_MS,
                "notes": f"p50 {p50:.4f} ms; "
                + _what_is_timed(router)
                + f"; {len(short)} prompts, median of {runs} runs x {decisions:,}",
            }
        )
    return figures


def _what_is_timed(router) -> str:
    if isinstance(router, _EmbeddingOnly):
        return (
            f"embedding of the prompt's window (feature set {router.version}; cached word "
            "tokens) + distance to 64 centroids"
        )
    if isinstance(router, _FeaturesOnly):
        return f"hand-crafted prompt features, feature set {router.version}"
    return "classifier + WordLlama embedding + out-of-domain check + learned score"


def run(quick: bool = False) -> list[dict]:
    from routing_platform.engine.config import RouterConfig
    from routing_platform.engine.router import ModelRouter

    router = ModelRouter(RouterConfig())
    corpus = _corpus(limit=400 if quick else 4000)
    decisions = 2_000 if quick else 20_000
    runs = 3 if quick else 7
    _one_run(router, corpus, 500)  # warm-up (regex caches, imports)
    results = [_one_run(router, corpus, decisions) for _ in range(runs)]
    p50 = statistics.median(r[0] for r in results)
    p99 = statistics.median(r[1] for r in results)
    noop = statistics.median(r[2] for r in results)
    real = sum(1 for _ in corpus) - 8
    notes = (
        f"median of {runs} runs x {decisions:,} decisions over {len(corpus)} prompts "
        f"({real} real MMLU/GSM8K prompts)"
    )
    return [
        {
            "metric": "routing decision p99",
            "value": round(p99, 4),
            "unit": "ms",
            "target": f"<= {TARGET_P99_MS} ms",
            "met": p99 <= TARGET_P99_MS,
            "notes": notes,
        },
        {
            "metric": "routing decision p50",
            "value": round(p50, 4),
            "unit": "ms",
            "target": "",
            "met": None,
            "notes": f"clock-read overhead in the same process: {noop * 1000:.2f} us",
        },
        *_learned_figures(corpus, decisions, runs),
    ]


if __name__ == "__main__":
    for figure in run(quick=True):
        print(figure)
