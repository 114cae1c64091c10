"""Recording a call answered inline (the SDK, the routing API, ``/v1``): its row, once, and its shadow decision."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from experiments.models import Arm, Experiment, Phase, RoutedCall
from experiments.services.calls.fields import Kind, Status
from experiments.services.calls.records import record_once
from experiments.services.calls.shadow import routed_call_shadow_enqueue

logger = logging.getLogger(__name__)


def routed_call_record(
    *,
    kind: str,
    source: str,
    unit_id: str = "",
    task_type: str = "",
    request_payload: Mapping[str, Any] | None,
    result: Mapping[str, Any] | None = None,
    error: BaseException | str | None = None,
    experiment: Experiment | int | None = None,
    arm: Arm | int | None = None,
    phase: Phase | int | None = None,
    idempotency_key: str | None = None,
    is_shadow: bool = False,
    strategy: str = "",
) -> RoutedCall:
    """Record one routed call as ``success`` (``result``) or ``error`` (``error``), once.

    With an ``idempotency_key`` already recorded as finished, nothing changes and that
    row is returned; a ``queued``/``running`` row with the key (written by
    ``routed_call_enqueue``) is completed in place, keeping its experiment, arm and
    pairing. The call's rollup is applied in the same transaction.

    A successful call in an experiment that is recorded here for the first time (the SDK,
    the routing API, ``/v1``) then gets its shadow decision, so every entry point pairs the
    same share of calls; a queued call got its decision when it was enqueued.
    """
    if kind not in Kind.values:
        raise ValidationError(f"Unknown call kind {kind!r}: use one of {', '.join(Kind.values)}.")
    call, created = record_once(
        kind=kind,
        source=source,
        unit_id=unit_id,
        task_type=task_type,
        request_payload=request_payload,
        result=result,
        error=error,
        experiment=experiment,
        arm=arm,
        phase=phase,
        idempotency_key=idempotency_key,
        is_shadow=is_shadow,
        strategy=strategy,
    )
    if created:
        _shadow_inline_call(call)
    return call


def _shadow_inline_call(call: RoutedCall) -> None:
    """Maybe pair a successful call just recorded inline (no job) with a shadow twin.

    A dead queue fails the twin (recorded as an error), never the primary call, which is
    recorded either way.
    """
    if call.status != Status.SUCCESS or not call.experiment_id:
        return
    try:
        routed_call_shadow_enqueue(call=call)
    except Exception:
        logger.exception("shadow call of routed call %s not enqueued", call.pk)
