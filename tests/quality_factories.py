"""Quality-signal rows for tests: calls of an arm, each with one signal (bulk-created,
no rollups, so the report's other metrics are untouched)."""

from __future__ import annotations

import uuid
from itertools import count

import numpy as np

from experiments.models import Arm, Experiment, Phase, QualitySignal, RoutedCall

_sequence = count()


def add_signals(
    experiment: Experiment,
    arm_key: str,
    *,
    source: str,
    values,
    calls_per_unit: int = 2,
    is_shadow: bool = False,
) -> list[RoutedCall]:
    """One success call per value with a ``source`` signal of that value, in units of
    ``calls_per_unit`` calls, in the experiment's latest phase."""
    arm = Arm.objects.get(experiment=experiment, key=arm_key)
    phase = Phase.objects.filter(experiment=experiment).order_by("-number").first()
    batch = next(_sequence)
    calls = RoutedCall.objects.bulk_create(
        [
            RoutedCall(
                idempotency_key=uuid.uuid4().hex,
                kind=RoutedCall.Kind.EVALUATE,
                source="shadow" if is_shadow else "api",
                status=RoutedCall.Status.SUCCESS,
                experiment=experiment,
                arm=arm,
                phase=phase,
                unit_id=f"u{batch}-{index // calls_per_unit}",
                is_shadow=is_shadow,
            )
            for index in range(len(values))
        ]
    )
    # bulk_create skips QualitySignal.save(), which copies the call's experiment and phase.
    QualitySignal.objects.bulk_create(
        [
            QualitySignal(
                call=call, experiment=experiment, phase=phase, source=source, value=float(value)
            )
            for call, value in zip(calls, values, strict=True)
        ]
    )
    return calls


def healthy_signals(experiment: Experiment, treatment: str, *, source: str = "agreement") -> None:
    """Enough good signals (agreement ~0.97) for the treatment's quality guardrail to pass."""
    rng = np.random.default_rng(11)
    values = np.clip(rng.normal(0.97, 0.02, 400), 0, 1)
    add_signals(experiment, treatment, source=source, values=values)
