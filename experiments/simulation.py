"""Simulated traffic through the real path: assignment, queue, worker, record.

Used by ``manage.py routing simulate`` and ``routing demo-seed`` (and the RQ throughput
benchmark). ``simulated_requests`` is a pure, seeded generator of realistic requests
(execute calls of every task type and complexity, and council script evaluations);
``traffic_enqueue`` writes them as queued calls through ``routed_call_enqueue``;
``calls_wait`` polls the database until the workers have recorded them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Count, Q

from experiments import jobs, services
from experiments.models import Experiment, RoutedCall
from routing_platform.engine.classifier import TASK_TYPES

KINDS = ("mixed", "execute", "evaluate")

_REVIEWS = (
    "The checkout was fast and the support team answered within minutes.",
    "Delivery took three weeks and nobody replied to my emails.",
    "It works, I guess. Nothing special.",
    "Absolutely love the new dashboard, it saves me an hour a day!",
)
_TOPICS = (
    "budget travel in Portugal",
    "meal prep for busy parents",
    "switching careers into data science",
    "home espresso on a budget",
    "training for a first marathon",
    "renting versus buying a flat",
)
_AUDIENCES = ("students", "new parents", "small business owners", "retirees", "gamers")
_CODE_TASKS = (
    "merges overlapping intervals in a list of (start, end) pairs",
    "parses an ISO 8601 duration string into seconds",
    "finds the k most frequent words in a large text file using bounded memory",
    "implements an LRU cache with O(1) get and put",
)
_NICHES = ("travel", "food", "finance", "fitness", "tech", "education")


def _execute_request(rng: random.Random) -> tuple[str, dict]:
    task = rng.choice(TASK_TYPES)
    topic, audience = rng.choice(_TOPICS), rng.choice(_AUDIENCES)
    if task == "classification":
        text = (
            "Classify the sentiment of this review as positive, negative or neutral: "
            + rng.choice(_REVIEWS)
        )
    elif task == "extraction":
        text = (
            "Extract every company name and date from this note: Acme Corp signed with "
            f"Globex on 2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}; Initech follows in Q3."
        )
    elif task == "summarization":
        text = "Summarize in three bullet points: " + " ".join(rng.sample(_REVIEWS, 3))
    elif task == "creative":
        text = f"Write a 60-second video script hook about {topic} for {audience}."
    elif task == "analysis":
        text = (
            f"Analyze the trade-offs of {topic} for {audience}, considering cost, risk and "
            "time. Compare at least three options and give a recommendation with reasons."
        )
    elif task == "code":
        text = (
            f"Write a Python function that {rng.choice(_CODE_TASKS)}, with type hints and "
            "unit tests, then explain its time and space complexity step by step."
        )
    else:
        speed_a, speed_b = rng.randint(40, 90), rng.randint(40, 90)
        text = (
            f"Two trains leave stations 300 km apart at {speed_a} km/h and {speed_b} km/h "
            "towards each other. Prove when and where they meet, step by step, and check "
            "the answer."
        )
    return task, {"text": text}


def _evaluate_request(rng: random.Random) -> tuple[str, dict]:
    topic, audience = rng.choice(_TOPICS), rng.choice(_AUDIENCES)
    script = (
        f"HOOK: Stop scrolling if you care about {topic}. "
        f"BODY: Here are {rng.randint(3, 7)} things {audience} get wrong, and what to do "
        f"instead. {rng.choice(_REVIEWS)} "
        "CTA: Follow for part two."
    )
    return "analysis", {"script": script, "niche": rng.choice(_NICHES)}


def simulated_requests(
    *, count: int, units: int, kind: str = "mixed", seed: int = 0
) -> Iterator[dict]:
    """``count`` requests from ``units`` distinct users, deterministic for a seed.

    Each is ``{"kind", "task_type", "unit_id", "request_payload"}``; "mixed" is half
    script evaluations (the council), half single executions.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    rng = random.Random(seed)
    for _ in range(count):
        call_kind = kind if kind != "mixed" else rng.choice(("execute", "evaluate"))
        if call_kind == "evaluate":
            task_type, payload = _evaluate_request(rng)
        else:
            task_type, payload = _execute_request(rng)
        yield {
            "kind": call_kind,
            "task_type": task_type,
            "unit_id": f"sim-user-{rng.randrange(max(units, 1))}",
            "request_payload": payload,
        }


@dataclass
class SimulatedTraffic:
    """The calls a simulation wrote: primary ids and their shadow twins' ids."""

    primary_ids: list[int] = field(default_factory=list)
    shadow_ids: list[int] = field(default_factory=list)

    @property
    def all_ids(self) -> list[int]:
        return [*self.primary_ids, *self.shadow_ids]


def traffic_enqueue(
    *,
    experiment: Experiment,
    requests: Iterable[dict],
    shadow_share: float | None = None,
    dispatch: bool = True,
    source: str = "simulate",
    on_progress: Callable[[int], None] | None = None,
) -> SimulatedTraffic:
    """Write each request as a queued call of ``experiment`` (jobs enqueued after each
    commit unless ``dispatch`` is False)."""
    traffic = SimulatedTraffic()
    for done, request in enumerate(requests, start=1):
        call = services.routed_call_enqueue(
            kind=request["kind"],
            request_payload=request["request_payload"],
            task_type=request.get("task_type", ""),
            unit_id=request.get("unit_id", ""),
            experiment=experiment,
            source=source,
            shadow_share=shadow_share,
            dispatch=dispatch,
        )
        traffic.primary_ids.append(call.pk)
        if call.paired_call_id:
            traffic.shadow_ids.append(call.paired_call_id)
        if on_progress is not None:
            on_progress(done)
    return traffic


def traffic_run_inline(
    *, traffic: SimulatedTraffic, on_progress: Callable[[int], None] | None = None
) -> None:
    """Run every call of ``traffic`` in this process (no queue, no worker; the judge of
    each completed shadow pair too)."""
    for done, call_id in enumerate(traffic.all_ids, start=1):
        jobs.routed_call_execute(call_id, judge="inline")
        if on_progress is not None:
            on_progress(done)


def calls_finished(*, call_ids: list[int]) -> int:
    """How many of ``call_ids`` are recorded (success or error)."""
    finished = 0
    for start in range(0, len(call_ids), 900):  # stay under SQLite's variable limit
        chunk = call_ids[start : start + 900]
        finished += RoutedCall.objects.filter(
            pk__in=chunk, status__in=(RoutedCall.Status.SUCCESS, RoutedCall.Status.ERROR)
        ).count()
    return finished


def calls_wait(
    *,
    call_ids: list[int],
    timeout_s: float,
    poll_s: float = 0.5,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Poll until every call is recorded or ``timeout_s`` passes; the number finished."""
    deadline = time.monotonic() + timeout_s
    while True:
        finished = calls_finished(call_ids=call_ids)
        if on_progress is not None:
            on_progress(finished)
        if finished >= len(call_ids) or time.monotonic() >= deadline:
            return finished
        time.sleep(poll_s)


def traffic_summary(*, traffic: SimulatedTraffic) -> dict:
    """Per arm: primary calls by status; shadow pairs; errors (a few aggregate queries)."""
    by_arm: dict[str, dict[str, int]] = {}
    errors = 0
    for start in range(0, len(traffic.primary_ids), 900):
        chunk = traffic.primary_ids[start : start + 900]
        rows = (
            RoutedCall.objects.filter(pk__in=chunk)
            .values("arm__key")
            .annotate(
                calls=Count("id"),
                success=Count("id", filter=Q(status=RoutedCall.Status.SUCCESS)),
                error=Count("id", filter=Q(status=RoutedCall.Status.ERROR)),
            )
        )
        for row in rows:
            arm = row["arm__key"] or "(not in the experiment)"
            entry = by_arm.setdefault(arm, {"calls": 0, "success": 0, "error": 0})
            for name in ("calls", "success", "error"):
                entry[name] += row[name]
            errors += row["error"]
    return {
        "requests": len(traffic.primary_ids),
        "shadow_calls": len(traffic.shadow_ids),
        "finished": calls_finished(call_ids=traffic.all_ids),
        "errors": errors,
        "by_arm": dict(sorted(by_arm.items())),
    }
