"""Queueing a call: a ``queued`` row assigned to its unit's arm, and its job after commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from experiments.models import Experiment, RoutedCall
from experiments.services.assignment import route_for_unit
from experiments.services.calls.dispatch import (
    ROUTING_QUEUE,
    enqueue_after_commit,
    job_id_for,
    route_payload,
)
from experiments.services.calls.fields import RELATIONS, Kind, Status, clip
from experiments.services.calls.shadow import routed_call_shadow_enqueue

_PAYLOAD_NEEDS = {
    Kind.EXECUTE: ("text", "messages"),
    Kind.CHAT: ("messages",),
    Kind.EVALUATE: ("script",),
}


def _validate_payload(kind: str, payload: Mapping[str, Any]) -> None:
    if kind not in Kind.values:
        raise ValidationError(
            {"kind": f"Unknown call kind {kind!r}: use one of {', '.join(Kind.values)}."}
        )
    if not isinstance(payload, Mapping):
        raise ValidationError({"request_payload": "The request must be a JSON object."})
    needs = _PAYLOAD_NEEDS[kind]
    if not any(payload.get(name) for name in needs):
        raise ValidationError(
            {"request_payload": f"A {kind} call needs {' or '.join(needs)} (non-empty)."}
        )


def _experiment_by_key(experiment_key: str | None) -> Experiment | None:
    if not experiment_key:
        return None
    experiment = Experiment.objects.select_related("serving_arm").filter(key=experiment_key).first()
    if experiment is None:
        raise ValidationError(
            {"experiment_key": f"No experiment with key {experiment_key!r}; create it first."}
        )
    return experiment


def routed_call_enqueue(
    *,
    kind: str,
    request_payload: Mapping[str, Any],
    task_type: str = "",
    unit_id: str = "",
    experiment_key: str | None = None,
    source: str = "api",
    experiment: Experiment | None = None,
    shadow_share: float | None = None,
    dispatch: bool = True,
) -> RoutedCall:
    """Write a ``queued`` call (assigned to its unit's arm) and enqueue its job on commit.

    ``experiment`` may be passed instead of ``experiment_key`` (saves a query per call in
    a simulation). ``shadow_share`` (0-1) overrides the experiment's shadow percentage:
    that share of assigned calls also runs the other arm on the same input, as a pair.
    ``dispatch=False`` writes the rows without enqueueing: the caller runs
    ``experiments.jobs.routed_call_execute`` itself (``routing simulate --sync``).
    """
    _validate_payload(kind, request_payload)
    if experiment is None:
        experiment = _experiment_by_key(experiment_key)
    route = route_for_unit(experiment=experiment, unit_id=unit_id) if experiment else None
    key = uuid.uuid4().hex
    with transaction.atomic():
        call = RoutedCall(
            idempotency_key=key,
            kind=kind,
            source=clip(source, 32),
            status=Status.QUEUED,
            unit_id=clip(unit_id, 255),
            task_type=clip(task_type, 32),
            request_payload=route_payload(request_payload, route),
            strategy=route.strategy if route else "",
            job_id=job_id_for(key),
        )
        if route is not None and route.in_experiment:
            call.experiment = experiment
            call.arm_id = route.arm_id
            call.phase_id = route.phase_id
        call.full_clean(exclude=RELATIONS, validate_unique=False, validate_constraints=False)
        call.save()
        if dispatch:
            transaction.on_commit(
                partial(enqueue_after_commit, call.pk, call.job_id, ROUTING_QUEUE)
            )
        if route is not None and route.in_experiment:
            routed_call_shadow_enqueue(call=call, share=shadow_share, dispatch=dispatch)
    return call
