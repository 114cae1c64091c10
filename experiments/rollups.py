"""Keep :class:`~experiments.models.CallRollup` in step with routed calls.

``rollup_apply(call=...)`` adds one finished call to its hourly rows and to its unit's
:class:`~experiments.models.UnitRollup` row (the per-unit sums the statistics read); it is called inside
the transaction that moves a ``RoutedCall`` to success or error, so the rollup and the
call commit together. ``rollups_rebuild()`` recomputes every row from the raw calls with
``GROUP BY`` queries (after a bulk import, a data fix, or to check ``rollup_apply``).

Concurrency: several RQ workers finish calls of the same hour at once. Each row is
written by one ``INSERT ... ON CONFLICT (key) DO UPDATE SET n = n + excluded.n, ...``
(SQLite >= 3.24 and PostgreSQL): the database creates the row or adds to it atomically,
histogram buckets included (``json_set`` / ``jsonb_set`` on the stored JSON list), so
no row is read into Python, locked by hand, or lost to a unique-constraint race.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

import numpy as np
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    IntegerField,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, Floor, Least, TruncHour
from django.utils import timezone

from experiments.models import ArmRollup, CallRollup, RoutedCall, UnitRollup
from experiments.models.rollups import CALL_DIMENSIONS, RollupMeasures
from experiments.stats.histograms import (
    CONFIDENCE_HIST_SIZE,
    LATENCY_HIST_PER_DECADE,
    LATENCY_HIST_SIZE,
    confidence_bucket,
    latency_bucket,
)

#: Statuses that end a call; only these are rolled up.
FINISHED_STATUSES = (RoutedCall.Status.SUCCESS, RoutedCall.Status.ERROR)
#: The dimensions of a rollup row, in the order of the unique constraint.
KEY_FIELDS = ("bucket_start", *CALL_DIMENSIONS)
#: The dimensions of an ArmRollup row (the reports' grain).
ARM_KEY_FIELDS = ("bucket_start", "experiment_key", "arm_key", "status", "is_shadow")
#: The summed fields of both rollups.
SUM_FIELDS = (
    "n",
    "escalated_n",
    "cost_usd_sum",
    "baseline_cost_usd_sum",
    "cost_usd_sumsq",
    "input_tokens_sum",
    "output_tokens_sum",
    "latency_n",
    "latency_ms_sum",
    "latency_ms_sumsq",
    "confidence_n",
    "confidence_sum",
    "confidence_sumsq",
    "quality_n",
    "quality_sum",
    "quality_sumsq",
)


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment`` (aware)."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollup_key(*, call: RoutedCall) -> dict:
    """The rollup row key of a finished call."""
    experiment_key = call.experiment.key if call.experiment_id else ""
    arm_key = call.arm.key if call.arm_id else ""
    return {
        "bucket_start": hour_start(call.completed_at or timezone.now()),
        "experiment_key": experiment_key,
        "arm_key": arm_key,
        "kind": call.kind or "",
        "status": call.status,
        "strategy": call.strategy or "",
        "complexity": call.complexity or "",
        "tier": call.tier or "",
        "model": call.model or "",
        "provider": call.provider or "",
        "task_type": call.task_type or "",
        "is_shadow": bool(call.is_shadow),
    }


def _increments(call: RoutedCall) -> dict:
    """The amounts one call adds to each summed field."""
    cost_usd = Decimal(call.cost_usd or 0)
    latency = call.latency_ms
    confidence = call.confidence
    quality = call.final_score
    return {
        "n": 1,
        "escalated_n": 1 if call.escalated else 0,
        "cost_usd_sum": cost_usd,
        "baseline_cost_usd_sum": Decimal(call.baseline_cost_usd or 0),
        "cost_usd_sumsq": float(cost_usd) ** 2,
        "input_tokens_sum": int(call.input_tokens or 0),
        "output_tokens_sum": int(call.output_tokens or 0),
        "latency_n": 0 if latency is None else 1,
        "latency_ms_sum": 0.0 if latency is None else float(latency),
        "latency_ms_sumsq": 0.0 if latency is None else float(latency) ** 2,
        "confidence_n": 0 if confidence is None else 1,
        "confidence_sum": 0.0 if confidence is None else float(confidence),
        "confidence_sumsq": 0.0 if confidence is None else float(confidence) ** 2,
        "quality_n": 0 if quality is None else 1,
        "quality_sum": 0.0 if quality is None else float(quality),
        "quality_sumsq": 0.0 if quality is None else float(quality) ** 2,
    }


def _hist_params(call: RoutedCall) -> tuple[int | None, int | None]:
    """The (latency, confidence) histogram buckets of one call; None where it has no value."""
    latency = None if call.latency_ms is None else latency_bucket(call.latency_ms)
    confidence = None if call.confidence is None else confidence_bucket(call.confidence)
    return latency, confidence


@lru_cache(maxsize=256)
def _one_hot(size: int, index: int | None) -> str:
    """A histogram of ``size`` buckets holding one count at ``index`` (none if None), as JSON."""
    counts = [0] * size
    if index is not None:
        counts[index] = 1
    return _hist_json(counts)


def _hist_increment_sql(table: str, column: str) -> str:
    """SQL adding one to bucket ``%s`` of the stored JSON histogram ``table.column``.

    Two parameters: the bucket index, twice (as a JSON path on SQLite, as a text[] path
    and an int on PostgreSQL; see ``_hist_increment_params``).
    """
    stored = f"{table}.{column}"
    if connection.vendor == "postgresql":
        return (
            f"jsonb_set({stored}, %s::text[], "
            f"to_jsonb(COALESCE(({stored} ->> %s::int)::bigint, 0) + 1))"
        )
    return f"json_set({stored}, %s, COALESCE(json_extract({stored}, %s), 0) + 1)"


def _hist_increment_params(index: int) -> list:
    if connection.vendor == "postgresql":
        return [f"{{{index}}}", index]
    path = f"$[{index}]"
    return [path, path]


@lru_cache(maxsize=32)
def _upsert_sql(model: type[RollupMeasures], vendor: str, latency: bool, confidence: bool) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` adding one call to a rollup row.

    Every sum becomes ``column + excluded.column``; the histograms get one more count in
    the call's bucket (only those it has a value for). Identifiers are the model's own
    column names (constants); values are always parameters. Works on SQLite >= 3.24 and
    PostgreSQL; the vendor is part of the cache key because the JSON functions differ.
    """
    table = model._meta.db_table
    key_fields = KEY_FIELDS if model is CallRollup else ARM_KEY_FIELDS
    column = {field: model._meta.get_field(field).column for field in _insert_fields(model)}
    json_cast = "::jsonb" if vendor == "postgresql" else ""
    placeholders = [
        f"%s{json_cast}" if field in ("latency_hist", "confidence_hist") else "%s"
        for field in _insert_fields(model)
    ]
    updates = [
        f"{column[name]} = {table}.{column[name]} + excluded.{column[name]}" for name in SUM_FIELDS
    ]
    if latency:
        updates.append(
            f"{column['latency_hist']} = " + _hist_increment_sql(table, column["latency_hist"])
        )
    if confidence:
        updates.append(
            f"{column['confidence_hist']} = "
            + _hist_increment_sql(table, column["confidence_hist"])
        )
    updates.append(f"{column['updated_at']} = excluded.{column['updated_at']}")
    return (
        f"INSERT INTO {table} ({', '.join(column.values())}) "  # noqa: S608 - constants
        f"VALUES ({', '.join(placeholders)}) "
        f"ON CONFLICT ({', '.join(column[name] for name in key_fields)}) "
        f"DO UPDATE SET {', '.join(updates)}"
    )


def _insert_fields(model: type[RollupMeasures]) -> tuple[str, ...]:
    key_fields = KEY_FIELDS if model is CallRollup else ARM_KEY_FIELDS
    return (*key_fields, *SUM_FIELDS, "latency_hist", "confidence_hist", "updated_at")


def _upsert(cursor, model: type[RollupMeasures], key: dict, sums: list, hists: tuple, now) -> None:
    """Add one call (``sums`` in SUM_FIELDS order) to the ``model`` row of ``key``, creating
    the row if it is missing: one statement, atomic in the database."""
    latency, confidence = hists
    ops = connection.ops
    key_fields = KEY_FIELDS if model is CallRollup else ARM_KEY_FIELDS
    params = [
        ops.adapt_datetimefield_value(key[name]) if name == "bucket_start" else key[name]
        for name in key_fields
    ]
    params += sums
    params += [
        _one_hot(LATENCY_HIST_SIZE, latency),
        _one_hot(CONFIDENCE_HIST_SIZE, confidence),
        now,
    ]
    if latency is not None:
        params += _hist_increment_params(latency)
    if confidence is not None:
        params += _hist_increment_params(confidence)
    sql = _upsert_sql(model, connection.vendor, latency is not None, confidence is not None)
    cursor.execute(sql, params)


def rollup_prepare(*, call: RoutedCall) -> tuple | None:
    """The parameters of a finished call's rollup writes (None for an unfinished call),
    computed without touching the database."""
    if call.status not in FINISHED_STATUSES:
        return None
    key = rollup_key(call=call)
    increments = _increments(call)
    sums = [increments[name] for name in SUM_FIELDS]
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return key, sums, _hist_params(call), now, _unit_params(call, now)


def rollup_apply(*, call: RoutedCall, prepared: tuple | None = None) -> None:
    """Add one finished call (status success or error) to its hourly rollup rows (its
    :class:`CallRollup` row and its :class:`ArmRollup` row).

    Call it exactly once per call, in the transaction that sets the final status. Calls
    that are not finished (queued, running) are ignored. Each row is one ``INSERT ... ON
    CONFLICT DO UPDATE`` (sums and histogram buckets incremented in SQL), so concurrent
    workers never lose an increment and no row is read into Python. ``prepared`` is
    ``rollup_prepare(call=call)`` computed earlier (outside the transaction).
    """
    if prepared is None:
        prepared = rollup_prepare(call=call)
    if prepared is None:
        return
    key, sums, hists, now, unit = prepared
    # All rows or none: a transaction of its own when called outside one, no savepoint
    # inside the caller's.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        _upsert(cursor, CallRollup, key, sums, hists, now)
        _upsert(cursor, ArmRollup, key, sums, hists, now)
        if unit is not None:
            cursor.execute(_unit_upsert_sql(connection.vendor), unit)


# --- Per-unit rollup (the randomization unit's sufficient statistics) -----------------------

#: UnitRollup's key, in the order of its unique constraint.
UNIT_KEY_FIELDS = ("experiment_key", "phase_id", "arm_key", "unit_id")
#: UnitRollup's summed fields.
UNIT_SUM_FIELDS = (
    "n",
    "errors",
    "escalated_n",
    "cost_usd_sum",
    "latency_n",
    "latency_ms_sum",
    "confidence_n",
    "confidence_sum",
    "quality_n",
    "quality_sum",
)
_UNIT_FIELDS = (*UNIT_KEY_FIELDS, *UNIT_SUM_FIELDS, "first_exposure_at", "updated_at")


def unit_of(call: RoutedCall) -> str:
    """The analysis unit of a call: its ``unit_id``, or the call itself when it has none
    (a request-level experiment), so every call belongs to exactly one unit."""
    return call.unit_id or f"call:{call.pk}"


def _unit_params(call: RoutedCall, now) -> list | None:
    """The UnitRollup upsert parameters of a finished call (None for calls outside an
    experiment arm, for shadow calls, which no unit asked for, and for experiments that
    assign requests, where the call is the unit and the hourly rollups already hold its
    sums)."""
    if not call.experiment_id or not call.arm_id or call.is_shadow:
        return None
    if call.experiment.unit_type == call.experiment.UnitType.REQUEST:
        return None
    latency, confidence, quality = call.latency_ms, call.confidence, call.final_score
    exposed = call.created_at or call.completed_at or timezone.now()
    values = [
        call.experiment.key,
        call.phase_id or 0,
        call.arm.key,
        unit_of(call)[:255],
        1,
        1 if call.status == RoutedCall.Status.ERROR else 0,
        1 if call.escalated else 0,
        float(call.cost_usd or 0),
        0 if latency is None else 1,
        0.0 if latency is None else float(latency),
        0 if confidence is None else 1,
        0.0 if confidence is None else float(confidence),
        0 if quality is None else 1,
        0.0 if quality is None else float(quality),
        connection.ops.adapt_datetimefield_value(exposed),
        now,
    ]
    return values


@lru_cache(maxsize=4)
def _unit_upsert_sql(vendor: str) -> str:
    """``INSERT ... ON CONFLICT (unit key) DO UPDATE`` adding one call to its unit's row;
    the first exposure is the earlier of the stored and the new call's time."""
    table = UnitRollup._meta.db_table
    column = {name: UnitRollup._meta.get_field(name).column for name in _UNIT_FIELDS}
    earliest = "LEAST" if vendor == "postgresql" else "MIN"
    updates = [f"{column[n]} = {table}.{column[n]} + excluded.{column[n]}" for n in UNIT_SUM_FIELDS]
    first = column["first_exposure_at"]
    updates.append(f"{first} = {earliest}({table}.{first}, excluded.{first})")
    updates.append(f"{column['updated_at']} = excluded.{column['updated_at']}")
    return (
        f"INSERT INTO {table} ({', '.join(column.values())}) "  # noqa: S608 - constants
        f"VALUES ({', '.join(['%s'] * len(column))}) "
        f"ON CONFLICT ({', '.join(column[name] for name in UNIT_KEY_FIELDS)}) "
        f"DO UPDATE SET {', '.join(updates)}"
    )


def unit_rollups_rebuild() -> int:
    """Recompute every UnitRollup row from the raw calls (one ``GROUP BY`` in the database,
    rows written back with ``executemany``); returns the number of rows."""
    UnitRollup.objects.all().delete()
    error = Q(status=RoutedCall.Status.ERROR)
    grouped = (
        RoutedCall.objects.filter(
            status__in=FINISHED_STATUSES,
            is_shadow=False,
            experiment__isnull=False,
            arm__isnull=False,
        )
        .exclude(experiment__unit_type="request")
        .annotate(
            experiment_key=F("experiment__key"),
            arm_key=F("arm__key"),
            phase_number=Coalesce(F("phase_id"), Value(0)),
            unit=Case(
                When(unit_id="", then=Concat(Value("call:"), Cast("id", CharField()))),
                default=F("unit_id"),
                output_field=CharField(),
            ),
        )
        .values("experiment_key", "phase_number", "arm_key", "unit")
        .order_by()
        .annotate(
            sum_n=Count("id"),
            sum_errors=Count("id", filter=error),
            sum_escalated=Count("id", filter=Q(escalated=True)),
            sum_cost=Sum(Cast("cost_usd", FloatField())),
            sum_latency_n=Count("latency_ms"),
            sum_latency=Sum("latency_ms"),
            sum_confidence_n=Count("confidence"),
            sum_confidence=Sum("confidence"),
            sum_quality_n=Count("final_score"),
            sum_quality=Sum("final_score"),
            first_exposure=Min("created_at"),
        )
    )
    column = {name: UnitRollup._meta.get_field(name).column for name in _UNIT_FIELDS}
    sql = (
        f"INSERT INTO {UnitRollup._meta.db_table} ({', '.join(column.values())}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(column))})"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    aliases = (
        "experiment_key",
        "phase_number",
        "arm_key",
        "unit",
        "sum_n",
        "sum_errors",
        "sum_escalated",
        "sum_cost",
        "sum_latency_n",
        "sum_latency",
        "sum_confidence_n",
        "sum_confidence",
        "sum_quality_n",
        "sum_quality",
        "first_exposure",
    )
    written = 0
    batch: list[tuple] = []
    with connection.cursor() as cursor:
        for record in _fetch(grouped):
            batch.append(
                (*(record[alias] or 0 for alias in aliases[:-1]), record[aliases[-1]], now)
            )
            if len(batch) >= 5000:
                cursor.executemany(sql, batch)
                written += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            written += len(batch)
    return written


class _Log10(Func):
    """Base-10 logarithm of a float: ``LOG10(x)`` on SQLite, ``LOG(x)`` on PostgreSQL.

    SQLite's log10(1000) is 2.9999999999999996 where Python says 3.0, so both sides add
    1e-9 before flooring (see ``experiments.stats.histograms.latency_bucket``).
    """

    function = "LOG10"
    arity = 1
    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="LOG", **extra_context)


def _latency_bucket_expression():
    """SQL twin of ``latency_bucket``: 0 below 1 ms, else min(floor(20 log10 x + 1e-9) + 1, 121)."""
    return Case(
        When(latency_ms__lt=1.0, then=Value(0)),
        default=Least(
            Cast(
                Floor(
                    Value(float(LATENCY_HIST_PER_DECADE)) * _Log10(Cast("latency_ms", FloatField()))
                    + Value(1e-9)
                ),
                IntegerField(),
            )
            + Value(1),
            Value(LATENCY_HIST_SIZE - 1),
        ),
        output_field=IntegerField(),
    )


def _confidence_bucket_expression():
    """SQL twin of ``confidence_bucket``: min(floor(50 c + 1e-9), 49)."""
    return Least(
        Cast(Floor(Cast("confidence", FloatField()) * Value(50.0) + Value(1e-9)), IntegerField()),
        Value(CONFIDENCE_HIST_SIZE - 1),
    )


class _SqliteHourStart(Func):
    """The UTC hour of a stored SQLite datetime, by string slicing.

    Django stores aware datetimes on SQLite as UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``;
    keeping the first 13 characters is the hour, without calling Django's Python
    ``django_datetime_trunc`` once per row (which dominates a rebuild of a million calls).
    """

    template = "(substr(%(expressions)s, 1, 13) || ':00:00')"
    output_field = DateTimeField()


def _hour_expression():
    moment = Coalesce("completed_at", "created_at")
    if connection.vendor == "sqlite":
        return _SqliteHourStart(moment)
    return TruncHour(moment, tzinfo=UTC)


def _finished_calls():
    return RoutedCall.objects.filter(status__in=FINISHED_STATUSES).annotate(
        bucket_start=_hour_expression(),
        experiment_key=Coalesce(F("experiment__key"), Value("")),
        arm_key=Coalesce(F("arm__key"), Value("")),
    )


def _fetch(queryset):
    """The rows of a grouped queryset as ``{column alias: raw database value}``, read with
    a plain cursor: Django's per-row converters (datetime parsing, Decimal quantizing)
    cost more than the query itself on a million calls, and the raw values go straight
    back into the database."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        while chunk := cursor.fetchmany(10_000):
            for record in chunk:
                yield dict(zip(names, record, strict=True))


def _hist_json(counts) -> str:
    return "[" + ",".join(str(int(count)) for count in counts) + "]"


def _bulk_insert(model: type[RollupMeasures], rows: list[dict]) -> None:
    """INSERT ``rows`` (raw database values by field name) with ``executemany``: the ORM's
    ``bulk_create`` prepares every value of every row in Python, which dominated the rebuild."""
    if not rows:
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    placeholders = []
    for field in fields:
        is_json = field.get_internal_type() == "JSONField"
        placeholders.append("%s::jsonb" if is_json and connection.vendor == "postgresql" else "%s")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(f.column for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(placeholders)})"
    )

    def value(field, row):
        if field.name == "updated_at":
            return now
        item = row[field.name]
        if field.name in ("cost_usd_sum", "baseline_cost_usd_sum"):
            return str(item or 0)
        if field.name in ("latency_hist", "confidence_hist"):
            return _hist_json(item)
        return 0 if item is None else item

    with connection.cursor() as cursor:
        for start in range(0, len(rows), 5000):
            cursor.executemany(
                sql,
                [
                    tuple(value(field, row) for field in fields)
                    for row in rows[start : start + 5000]
                ],
            )


@transaction.atomic
def rollups_rebuild() -> int:
    """Recompute every rollup row (CallRollup and ArmRollup) from the raw calls; returns
    the number of CallRollup rows.

    Grouped queries do the work in the database: one for the sums, one per histogram for
    the (row, bucket) counts. Python only assembles the grouped rows (and sums CallRollup
    rows into ArmRollup rows), never the calls.
    """
    CallRollup.objects.all().delete()
    ArmRollup.objects.all().delete()
    float_cost = Cast("cost_usd", FloatField())
    grouped = (
        _finished_calls()
        .values(*KEY_FIELDS)
        .order_by()
        .annotate(
            sum_n=Count("id"),
            sum_escalated_n=Count("id", filter=Q(escalated=True)),
            sum_cost_usd=Sum("cost_usd"),
            sum_baseline_cost_usd=Sum("baseline_cost_usd"),
            sum_cost_usd_sq=Sum(float_cost * float_cost),
            sum_input_tokens=Sum("input_tokens"),
            sum_output_tokens=Sum("output_tokens"),
            sum_latency_n=Count("latency_ms"),
            sum_latency_ms=Sum("latency_ms"),
            sum_latency_ms_sq=Sum(F("latency_ms") * F("latency_ms")),
            sum_confidence_n=Count("confidence"),
            sum_confidence=Sum("confidence"),
            sum_confidence_sq=Sum(F("confidence") * F("confidence")),
            sum_quality_n=Count("final_score"),
            sum_quality=Sum("final_score"),
            sum_quality_sq=Sum(F("final_score") * F("final_score")),
        )
    )
    sources = {
        "n": "sum_n",
        "escalated_n": "sum_escalated_n",
        "cost_usd_sum": "sum_cost_usd",
        "baseline_cost_usd_sum": "sum_baseline_cost_usd",
        "cost_usd_sumsq": "sum_cost_usd_sq",
        "input_tokens_sum": "sum_input_tokens",
        "output_tokens_sum": "sum_output_tokens",
        "latency_n": "sum_latency_n",
        "latency_ms_sum": "sum_latency_ms",
        "latency_ms_sumsq": "sum_latency_ms_sq",
        "confidence_n": "sum_confidence_n",
        "confidence_sum": "sum_confidence",
        "confidence_sumsq": "sum_confidence_sq",
        "quality_n": "sum_quality_n",
        "quality_sum": "sum_quality",
        "quality_sumsq": "sum_quality_sq",
    }
    rows: dict[tuple, dict] = {}
    for record in _fetch(grouped):
        key = tuple(record[name] for name in KEY_FIELDS)
        row = {name: record[name] for name in KEY_FIELDS}
        row.update({name: record[alias] or 0 for name, alias in sources.items()})
        row["latency_hist"] = np.zeros(LATENCY_HIST_SIZE, dtype=np.int64)
        row["confidence_hist"] = np.zeros(CONFIDENCE_HIST_SIZE, dtype=np.int64)
        rows[key] = row
    for field, expression, measure in (
        ("latency_hist", _latency_bucket_expression(), "latency_ms"),
        ("confidence_hist", _confidence_bucket_expression(), "confidence"),
    ):
        counts = (
            _finished_calls()
            .filter(**{f"{measure}__isnull": False})
            .annotate(hist_bucket=expression)
            .values(*KEY_FIELDS, "hist_bucket")
            .order_by()
            .annotate(bucket_n=Count("id"))
        )
        for record in _fetch(counts):
            key = tuple(record[name] for name in KEY_FIELDS)
            rows[key][field][max(int(record["hist_bucket"]), 0)] += record["bucket_n"]
    call_rows = list(rows.values())
    _bulk_insert(CallRollup, call_rows)
    _bulk_insert(ArmRollup, _arm_rollups(call_rows))
    unit_rollups_rebuild()
    return len(call_rows)


def _arm_rollups(call_rows: list[dict]) -> list[dict]:
    """ArmRollup rows summed from CallRollup rows (a loop over rollup rows, not calls)."""
    sums: dict[tuple, dict] = {}
    for row in call_rows:
        key = tuple(row[name] for name in ARM_KEY_FIELDS)
        into = sums.get(key)
        if into is None:
            into = sums[key] = {name: row[name] for name in ARM_KEY_FIELDS}
            into.update({name: 0 for name in SUM_FIELDS})
            into["latency_hist"] = row["latency_hist"] * 0
            into["confidence_hist"] = row["confidence_hist"] * 0
        for name in SUM_FIELDS:
            into[name] += row[name]
        into["latency_hist"] += row["latency_hist"]
        into["confidence_hist"] += row["confidence_hist"]
    return list(sums.values())
