"""Shadow twins: the other arm run on the same input, as the call's pair."""

from __future__ import annotations

import uuid
from functools import partial

from django.db import transaction

from experiments.bucketing import in_sample
from experiments.models import Arm, Experiment, RoutedCall
from experiments.services.assignment import arm_route
from experiments.services.calls.dispatch import (
    SHADOW_QUEUE,
    enqueue_after_commit,
    job_id_for,
    route_payload,
)
from experiments.services.calls.fields import RELATIONS, Status


def _other_arm(experiment: Experiment, arm_id: int) -> Arm | None:
    arms = list(Arm.objects.filter(experiment=experiment).order_by("position", "id"))
    current = next((arm for arm in arms if arm.pk == arm_id), None)
    if current is None:
        return None
    if current.is_control:
        return next((arm for arm in arms if not arm.is_control), None)
    return next((arm for arm in arms if arm.is_control), None) or next(
        (arm for arm in arms if arm.pk != arm_id), None
    )


@transaction.atomic
def routed_call_shadow_enqueue(
    *, call: RoutedCall, share: float | None = None, dispatch: bool = True
) -> RoutedCall | None:
    """Maybe run the other arm on the same input, in the background, as the call's pair.

    For a share of an experiment's calls (``share`` 0-1, default its shadow percentage,
    decided by a deterministic hash of the call's idempotency key), writes a ``queued``
    shadow row (``is_shadow``, source "shadow", the other arm) paired both ways with the
    call, and enqueues it on the "shadow" queue after commit. Returns it, or None.
    """
    if call.is_shadow or not call.experiment_id or not call.arm_id or call.paired_call_id:
        return None
    experiment = call.experiment
    if share is None:
        share = experiment.shadow_percentage / 100.0
    if share <= 0 or not in_sample(
        seed=f"{experiment.key}:shadow", unit_id=call.idempotency_key, share=share
    ):
        return None
    other = _other_arm(experiment, call.arm_id)
    if other is None:
        return None
    route = arm_route(experiment, other, phase_id=call.phase_id)
    key = uuid.uuid4().hex
    shadow = RoutedCall(
        idempotency_key=key,
        kind=call.kind,
        source="shadow",
        status=Status.QUEUED,
        unit_id=call.unit_id,
        task_type=call.task_type,
        request_payload=route_payload(call.request_payload, route),
        experiment=experiment,
        arm=other,
        phase_id=call.phase_id,
        strategy=other.strategy,
        is_shadow=True,
        paired_call=call,
        job_id=job_id_for(key),
    )
    shadow.full_clean(exclude=RELATIONS, validate_unique=False, validate_constraints=False)
    shadow.save()
    RoutedCall.objects.filter(pk=call.pk).update(paired_call=shadow)
    call.paired_call = shadow
    if dispatch:
        transaction.on_commit(partial(enqueue_after_commit, shadow.pk, shadow.job_id, SHADOW_QUEUE))
    return shadow
