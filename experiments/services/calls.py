"""The record of every routed call, and the queue that runs them.

Life of a queued call: ``routed_call_enqueue`` assigns the unit (sticky), writes a
``queued`` row whose ``request_payload`` holds everything the job needs, and enqueues
the RQ job after the transaction commits. A worker runs ``experiments.jobs
.routed_call_execute(call_id)``, which calls ``routed_call_execute`` here: it claims the
row (``running``, attempts + 1), runs the engine, and ``routed_call_record``s the outcome.

Exactly once: ``routed_call_record`` locks the row of its idempotency key and moves it to
``success``/``error`` only if it is not finished yet; the rollup (``experiments.rollups
.rollup_apply``) is applied in that same transaction. A job that runs twice (RQ retry, a
worker killed after the commit, a duplicate enqueue) therefore records once. A job that
keeps failing ends, after its RQ retries, as an ``error`` row with the reason
(``routed_call_fail``), never as a silently lost call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
import weakref
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import cache, partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from experiments.bucketing import in_sample
from experiments.db_retry import db_retry
from experiments.models import Arm, Experiment, Phase, RoutedCall
from experiments.routes import ArmRoute
from experiments.services.assignment import route_for_unit

logger = logging.getLogger(__name__)

Status = RoutedCall.Status
Kind = RoutedCall.Kind
FINISHED = (Status.SUCCESS, Status.ERROR)

ROUTING_QUEUE = "routing"
SHADOW_QUEUE = "shadow"
#: RQ retries of a job that crashed (worker killed, database unavailable, a bug). Provider
#: failures are retried by the engine itself and end as recorded errors, not job failures.
#: Immediate retries: a delayed retry would need a running RQ scheduler.
JOB_MAX_RETRIES = 3
JOB_TIMEOUT_S = 300

_ERROR_MESSAGE_MAX = 4000
#: Relations full_clean need not look up: they come from rows just read (the database
#: enforces them anyway).
_RELATIONS = ["experiment", "arm", "phase", "paired_call"]


class QueueUnavailableError(RuntimeError):
    """The job could not be enqueued (Redis is down); the call was recorded as an error."""


# --- Recording -------------------------------------------------------------------------------


def _without_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string and key: PostgreSQL refuses
    them in text and JSON (``DataError``), and an upstream answer may carry one."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _json_safe(value: Any) -> Any:
    """A JSON-serialisable copy (Decimals and other objects become strings), without NULs."""
    if value is None:
        return None
    return _without_nul(json.loads(json.dumps(value, default=str)))


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0")


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _clip(text: Any, length: int) -> str:
    return _without_nul("" if text is None else str(text))[:length]


def _outcome_fields(metadata: Mapping[str, Any], result: Mapping[str, Any] | None) -> dict:
    """RoutedCall fields from ``_routing_metadata`` (and the result's top level)."""
    result = result or {}
    confidence = _float_or_none(metadata.get("confidence"))
    if confidence is not None:
        confidence = min(max(confidence, 0.0), 1.0)
    models_tried = metadata.get("models_tried") or []
    if not isinstance(models_tried, list):
        models_tried = [str(models_tried)]
    fields = {
        "complexity": _clip(metadata.get("complexity"), 16),
        "complexity_score": _float_or_none(metadata.get("complexity_score")),
        "tier": _clip(metadata.get("tier"), 16),
        "models_tried": [str(model) for model in models_tried],
        "model": _clip(metadata.get("model") or result.get("model"), 128),
        "provider": _clip(metadata.get("provider") or result.get("provider"), 64),
        "escalated": bool(metadata.get("escalated", False)),
        "escalation_reason": _clip(metadata.get("escalation_reason"), 255),
        "confidence": confidence,
        "input_tokens": max(int(metadata.get("input_tokens") or 0), 0),
        "output_tokens": max(int(metadata.get("output_tokens") or 0), 0),
        "cost_usd": _decimal(metadata.get("cost")),
        "baseline_cost_usd": _decimal(metadata.get("baseline_cost")),
        "latency_ms": _float_or_none(metadata.get("latency_ms")),
        "final_score": _float_or_none(result.get("final_score")),
        "verdict": _clip(result.get("verdict"), 64),
    }
    strategy = metadata.get("strategy")
    if strategy:
        fields["strategy"] = _clip(strategy, 32)
    return fields


class _NamedError(Exception):
    """An error whose type name is given (e.g. "JobFailed"), for rows of failed jobs."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


def _error_fields(error: BaseException | str) -> tuple[dict, dict]:
    """(RoutedCall fields, partial routing metadata) of an error."""
    from config.logging_filters import redact

    if isinstance(error, _NamedError):
        error_type, message, metadata = error.type_name, str(error), {}
    elif isinstance(error, BaseException):
        error_type = type(error).__name__
        message = str(error) or error_type
        metadata = getattr(error, "metadata", None) or {}
    else:
        error_type, message, metadata = "Error", str(error), {}
    fields = {
        "error_type": _clip(error_type, 128),
        "error_message": _clip(redact(message), _ERROR_MESSAGE_MAX),
    }
    return fields, metadata if isinstance(metadata, Mapping) else {}


def _id_of(value: Any) -> int | None:
    if value is None:
        return None
    return value.pk if hasattr(value, "pk") else int(value)


def _instance(model, value: Any):
    """The instance when we were given one (saves the rollup a query), else None."""
    return value if isinstance(value, model) else None


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
    call, created = _record_once(
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


def _record_once(*, idempotency_key: str | None, **fields: Any) -> tuple[RoutedCall, bool]:
    for attempt in range(2):
        try:
            return _record(idempotency_key=idempotency_key, **fields)
        except IntegrityError:
            # Two processes created the row of one key at once; the other one won, so the
            # second pass finds its row (finished: returned as is).
            if attempt or not idempotency_key:
                raise
    raise AssertionError("unreachable")


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


@cache
def _key_lookup_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    meta = RoutedCall._meta
    return (
        f"SELECT {quote(meta.pk.column)} FROM {quote(meta.db_table)} "  # noqa: S608 - constants
        f"WHERE {quote(meta.get_field('idempotency_key').column)} = %s LIMIT 1"
    )


def _call_id_for_key(idempotency_key: str) -> int | None:
    """The id of the call recorded under ``idempotency_key``, if any.

    One indexed SELECT written once: a call recorded for the first time (every call of the
    OpenAI-compatible endpoint) pays ~0.05 ms for this check instead of the ~1.5 ms the
    ORM spends compiling a select_related query (measured on SQLite)."""
    with connection.cursor() as cursor:
        cursor.execute(_key_lookup_sql(connection.vendor), [idempotency_key])
        row = cursor.fetchone()
    return None if row is None else row[0]


@transaction.atomic
def _record(
    *,
    kind,
    source,
    unit_id,
    task_type,
    request_payload,
    result,
    error,
    experiment,
    arm,
    phase,
    idempotency_key,
    is_shadow,
    strategy,
) -> tuple[RoutedCall, bool]:
    if idempotency_key:
        call_id = _call_id_for_key(idempotency_key)
        if call_id is not None:
            call = RoutedCall.objects.select_related("experiment", "arm").get(pk=call_id)
            return _finish(call, result=result, error=error), False
    call = RoutedCall(
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        kind=kind,
        source=_clip(source, 32),
        unit_id=_clip(unit_id, 255),
        task_type=_clip(task_type, 32),
        request_payload=_json_safe(dict(request_payload or {})),
        experiment_id=_id_of(experiment),
        arm_id=_id_of(arm),
        phase_id=_id_of(phase),
        is_shadow=is_shadow,
        strategy=_clip(strategy, 32),
        attempts=1,
    )
    if _instance(Experiment, experiment) is not None:
        call.experiment = experiment
    if _instance(Arm, arm) is not None:
        call.arm = arm
    _apply_outcome(call, result=result, error=error)
    # Foreign keys, uniqueness and the confidence check are enforced by the database (and
    # the race is handled by the caller); skipping their lookups saves queries per call.
    call.full_clean(exclude=_RELATIONS, validate_unique=False, validate_constraints=False)
    call.save()

    from experiments.rollups import rollup_apply

    rollup_apply(call=call)
    return call, True


def _apply_outcome(call: RoutedCall, *, result, error) -> None:
    """Set the outcome fields of ``call`` (in memory) from a result or an error."""
    if not call.strategy and call.arm_id and call.arm is not None:
        call.strategy = call.arm.strategy
    if error is not None:
        fields, metadata = _error_fields(error)
        fields.update(_outcome_fields(metadata, None) if metadata else {})
        call.status = Status.ERROR
        call.result = _json_safe({"_routing_metadata": metadata}) if metadata else None
    else:
        result = dict(result or {})
        metadata = result.get("_routing_metadata") or {}
        fields = _outcome_fields(metadata, result)
        fields.update({"error_type": "", "error_message": ""})
        call.status = Status.SUCCESS
        call.result = _json_safe(result)
    for name, value in fields.items():
        setattr(call, name, value)
    call.completed_at = timezone.now()


#: What finishing a queued or running call writes.
_FINISH_FIELDS = (
    "status",
    "strategy",
    "complexity",
    "complexity_score",
    "tier",
    "models_tried",
    "model",
    "provider",
    "escalated",
    "escalation_reason",
    "confidence",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "latency_ms",
    "final_score",
    "verdict",
    "result",
    "error_type",
    "error_message",
    "completed_at",
)
# One statement, built from the model's own column names (constants; values are always
# parameters). The status condition is what makes recording exactly-once: of two
# processes finishing the same call, the second one's UPDATE matches no row (on
# PostgreSQL it waits for the first one's row lock, then re-reads the status).
_FINISH_SQL = (
    "UPDATE experiments_routedcall SET "  # noqa: S608 - identifiers are constants
    + ", ".join(f"{RoutedCall._meta.get_field(name).column} = %s" for name in _FINISH_FIELDS)
    + " WHERE id = %s AND status IN (%s, %s)"
)


def _finish(call: RoutedCall, *, result, error) -> RoutedCall:
    """Move a queued or running ``call`` to success/error and roll it up, exactly once.

    Runs inside the caller's transaction. A call already finished (by an earlier run of
    the same job, or a concurrent one) is returned as it is stored.
    """
    if call.is_finished:
        return call
    return _finish_prepared(call, _finish_prepare(call, result=result, error=error))


def _finish_prepare(call: RoutedCall, *, result, error) -> tuple[list, tuple | None]:
    """Set the outcome on ``call`` (in memory) and build the parameters of the finishing
    UPDATE and of its rollup: work that needs no transaction, so a job does it before
    taking SQLite's write lock."""
    from experiments.rollups import rollup_prepare

    _apply_outcome(call, result=result, error=error)
    call.clean_fields(
        exclude=[f.name for f in RoutedCall._meta.fields if f.name not in _FINISH_FIELDS]
    )
    params = [
        RoutedCall._meta.get_field(name).get_db_prep_save(getattr(call, name), connection)
        for name in _FINISH_FIELDS
    ]
    return params, rollup_prepare(call=call)


def _finish_prepared(call: RoutedCall, prepared: tuple[list, tuple | None]) -> RoutedCall:
    """The finishing UPDATE (guarded by status) and, if it moved the row, the rollup."""
    params, rollup = prepared
    with connection.cursor() as cursor:
        cursor.execute(_FINISH_SQL, [*params, call.pk, Status.QUEUED, Status.RUNNING])
        finished_now = cursor.rowcount == 1
    if not finished_now:
        call.refresh_from_db()
        return call

    from experiments.rollups import rollup_apply

    rollup_apply(call=call, prepared=rollup)
    return call


def routed_call_fail(
    *, call_id: int, reason: str, error_type: str = "JobFailed"
) -> RoutedCall | None:
    """Record a queued or running call as an error with ``reason`` (its job gave up).

    Returns the row (unchanged if it had already finished), or None if there is no such row.
    """
    call = RoutedCall.objects.filter(pk=call_id).first()
    if call is None:
        return None
    error = _NamedError(error_type, reason)
    return routed_call_record(
        kind=call.kind,
        source=call.source,
        unit_id=call.unit_id,
        task_type=call.task_type,
        request_payload=call.request_payload,
        error=error,
        idempotency_key=call.idempotency_key,
    )


# --- Queueing --------------------------------------------------------------------------------

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


def _route_payload(payload: Mapping[str, Any], route: ArmRoute | None) -> dict:
    """The payload with the route the job must follow (strategy and router parameters)."""
    payload = {name: value for name, value in payload.items() if name != "_route"}
    if route is not None:
        payload["_route"] = {
            "experiment_key": route.experiment_key,
            "arm_key": route.arm_key,
            "strategy": route.strategy,
            "router_params": dict(route.router_params),
            "in_experiment": route.in_experiment,
        }
    return _json_safe(payload)


def _job_id(idempotency_key: str) -> str:
    return f"call-{idempotency_key}"


def _enqueue(call_id: int, job_id: str, queue_name: str) -> None:
    """Put the job on the queue (runs after commit); a dead Redis fails the call loudly."""
    from experiments import jobs

    try:
        jobs.enqueue_routed_call(call_id=call_id, job_id=job_id, queue_name=queue_name)
    except Exception as err:  # redis.ConnectionError, TimeoutError, ...
        reason = f"queue {queue_name!r} unavailable: {type(err).__name__}: {err}"
        logger.error("routed call %s not enqueued: %s", call_id, reason)
        routed_call_fail(call_id=call_id, reason=reason, error_type="QueueUnavailable")
        raise QueueUnavailableError(
            f"The job queue is unavailable ({type(err).__name__}); the call was recorded as "
            "an error. Check that Redis is running (REDIS_URL) and retry."
        ) from err


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
            source=_clip(source, 32),
            status=Status.QUEUED,
            unit_id=_clip(unit_id, 255),
            task_type=_clip(task_type, 32),
            request_payload=_route_payload(request_payload, route),
            strategy=route.strategy if route else "",
            job_id=_job_id(key),
        )
        if route is not None and route.in_experiment:
            call.experiment = experiment
            call.arm_id = route.arm_id
            call.phase_id = route.phase_id
        call.full_clean(exclude=_RELATIONS, validate_unique=False, validate_constraints=False)
        call.save()
        if dispatch:
            transaction.on_commit(partial(_enqueue, call.pk, call.job_id, ROUTING_QUEUE))
        if route is not None and route.in_experiment:
            routed_call_shadow_enqueue(call=call, share=shadow_share, dispatch=dispatch)
    return call


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
    route = ArmRoute(
        experiment_key=experiment.key,
        arm_key=other.key,
        strategy=other.strategy,
        router_params=other.router_params(),
        experiment_id=experiment.pk,
        arm_id=other.pk,
        phase_id=call.phase_id,
    )
    key = uuid.uuid4().hex
    shadow = RoutedCall(
        idempotency_key=key,
        kind=call.kind,
        source="shadow",
        status=Status.QUEUED,
        unit_id=call.unit_id,
        task_type=call.task_type,
        request_payload=_route_payload(call.request_payload, route),
        experiment=experiment,
        arm=other,
        phase_id=call.phase_id,
        strategy=other.strategy,
        is_shadow=True,
        paired_call=call,
        job_id=_job_id(key),
    )
    shadow.full_clean(exclude=_RELATIONS, validate_unique=False, validate_constraints=False)
    shadow.save()
    RoutedCall.objects.filter(pk=call.pk).update(paired_call=shadow)
    call.paired_call = shadow
    if dispatch:
        transaction.on_commit(partial(_enqueue, shadow.pk, shadow.job_id, SHADOW_QUEUE))
    return shadow


# --- Executing (the job's body) -----------------------------------------------------------------


_JOB_ROW_MODELS = (("c", RoutedCall), ("e", Experiment), ("a", Arm))
_job_row_readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _job_row_reader(conn) -> tuple[str, list]:
    """(SQL, per model: its alias, model, fields, and each field's converters) of the job's
    one-row read, built once per database connection."""
    reader = _job_row_readers.get(conn)
    if reader is None:
        columns, parts = [], []
        for alias, model in _JOB_ROW_MODELS:
            fields = list(model._meta.concrete_fields)
            converters = []
            for field in fields:
                column = field.get_col(alias)
                converters.append(
                    (
                        column,
                        conn.ops.get_db_converters(column) + field.get_db_converters(conn),
                    )
                )
                columns.append(f"{alias}.{conn.ops.quote_name(field.column)}")
            parts.append((alias, model, fields, converters))
        sql = (
            f"SELECT {', '.join(columns)} FROM {RoutedCall._meta.db_table} c "  # noqa: S608
            f"LEFT JOIN {Experiment._meta.db_table} e ON e.id = c.experiment_id "
            f"LEFT JOIN {Arm._meta.db_table} a ON a.id = c.arm_id "
            "WHERE c.id = %s"
        )
        reader = _job_row_readers[conn] = (sql, parts)
    return reader


def routed_call_for_job(*, call_id: int) -> RoutedCall | None:
    """The call of a job with its experiment and arm, or None if the row is gone.

    What ``RoutedCall.objects.select_related("experiment", "arm").filter(pk=...).first()``
    returns, read with one prepared statement: compiling that ORM query cost more CPU per
    job (~1.5 ms) than the rest of the recording.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql, parts = _job_row_reader(conn)
    with conn.cursor() as cursor:
        cursor.execute(sql, [call_id])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for _alias, model, fields, converters in parts:
        values = list(row[start : start + len(fields)])
        start += len(fields)
        if values[0] is None:  # the LEFT JOIN found no row (no experiment / arm)
            instances.append(None)
            continue
        for index, (column, functions) in enumerate(converters):
            for function in functions:
                values[index] = function(values[index], column, conn)
        instances.append(model.from_db(conn.alias, [f.attname for f in fields], values))
    call, experiment, arm = instances
    RoutedCall._meta.get_field("experiment").set_cached_value(call, experiment)
    RoutedCall._meta.get_field("arm").set_cached_value(call, arm)
    return call


def _run_engine(call: RoutedCall) -> dict:
    """Run the call's request through the engine with its arm's strategy and parameters."""
    from routing_platform import runtime

    payload = call.request_payload or {}
    route = payload.get("_route") or {}
    strategy = call.strategy or route.get("strategy") or "smart_routing"
    router_params = route.get("router_params") or None
    if call.kind == Kind.EVALUATE:
        coroutine = runtime.run_evaluate(
            script=payload.get("script") or "",
            niche=payload.get("niche") or "general",
            strategy=strategy,
            router_params=router_params,
        )
    else:
        coroutine = runtime.run_execute(
            text=payload.get("text"),
            messages=payload.get("messages"),
            task_type=call.task_type or payload.get("task_type") or "analysis",
            strategy=strategy,
            router_params=router_params,
            model=payload.get("model"),
            max_tokens=payload.get("max_tokens"),
            temperature=payload.get("temperature"),
        )
    return _run_coroutine(coroutine)


_loops = threading.local()


def _run_coroutine(coroutine):
    """Run ``coroutine`` to completion on this thread's long-lived event loop.

    A worker runs jobs back to back: one loop per thread (instead of ``asyncio.run``'s new
    loop per job, and without ``asyncio.Runner``'s per-run signal-handler swap) keeps the
    engine's per-loop provider pool, and its HTTP keep-alive connections, across jobs. A
    job interrupted inside the loop (its timeout, a signal) leaves its task pending: that
    loop is closed, cancelling whatever it left running, and the next job starts a new
    one. Like ``asyncio.run``, it refuses to run inside a running loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise RuntimeError("routed calls cannot be executed from a running event loop")
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    task = loop.create_task(coroutine)
    try:
        return loop.run_until_complete(task)
    finally:
        if not task.done():
            _loops.loop = None
            _close_loop(loop)


def _close_loop(loop) -> None:
    """Cancel every task left on ``loop``, let them finish cancelling, and close it."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


_CLAIM_SQL = (
    "UPDATE experiments_routedcall SET status = %s, attempts = attempts + 1 "
    "WHERE id = %s AND status IN (%s, %s)"
)


def routed_call_execute(*, call: RoutedCall) -> RoutedCall:
    """Run a queued call through the engine and record its outcome (the job's body).

    A finished call is returned untouched (a job that runs twice records once). Routing
    errors (providers failing after the engine's own retries and fallbacks, bad requests)
    are recorded as ``error`` rows; anything else propagates, so RQ retries the job.
    """
    from routing_platform.engine.errors import RoutingError

    if not db_retry(partial(_claim, call)):
        db_retry(call.refresh_from_db)
        return call
    call.status, call.attempts = Status.RUNNING, call.attempts + 1
    result, error = None, None
    try:
        result = _run_engine(call)
    except RoutingError as err:
        error = err
    # Everything but the two writes happens before the transaction (on SQLite it holds
    # the database's write lock from its first statement to its commit). The upstream call
    # is paid for: a database restart now is waited out (db_retry), not turned into a retry
    # of the whole job.
    prepared = _finish_prepare(call, result=result, error=error)
    return db_retry(partial(_finish_atomically, call, prepared))


def _claim(call: RoutedCall) -> bool:
    """Move ``call`` to ``running`` (attempts + 1) unless it is finished; True if claimed."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [Status.RUNNING, call.pk, Status.QUEUED, Status.RUNNING])
        return cursor.rowcount == 1


def _finish_atomically(call: RoutedCall, prepared: tuple[list, tuple | None]) -> RoutedCall:
    with transaction.atomic():
        return _finish_prepared(call, prepared)


def routed_calls_reconcile(*, older_than_s: float = 600.0) -> dict[str, int]:
    """Settle calls whose job is gone: nothing may stay ``queued``/``running`` forever.

    For each unfinished call older than ``older_than_s``: if its RQ job failed for good
    (or no longer exists), record the call as an error with RQ's reason; if the job is
    still queued, started or scheduled, leave it. Returns counts by outcome.
    """
    from experiments import jobs

    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    counts = {"failed": 0, "lost": 0, "pending": 0}
    stale = RoutedCall.objects.filter(
        status__in=(Status.QUEUED, Status.RUNNING), created_at__lt=cutoff
    ).only("id", "job_id", "is_shadow")
    for call in stale.iterator():
        state, reason = jobs.job_state(
            job_id=call.job_id, queue_name=SHADOW_QUEUE if call.is_shadow else ROUTING_QUEUE
        )
        if state == "pending":
            counts["pending"] += 1
            continue
        counts[state] += 1
        routed_call_fail(
            call_id=call.pk,
            reason=reason,
            error_type="JobFailed" if state == "failed" else "JobLost",
        )
    return counts
