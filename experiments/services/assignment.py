"""Sticky assignment of units to arms, and the route a unit's call takes.

The arm comes from GrowthBook-compatible hashing (``experiments.bucketing``) of the unit
with the open phase's seed, weights and the experiment's traffic coverage; the first
time a unit is seen in a phase its arm is persisted as an ``Assignment`` row, and from
then on the row wins over the hash (so a later change of hashing or weights inside the
phase can never move a unit).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.base import ModelState
from django.utils import timezone

from experiments.bucketing import assign_arm
from experiments.models import Arm, Assignment, Experiment, Phase
from experiments.routes import ArmRoute

HASH_VERSION = 2


def _layout(experiment: Experiment) -> tuple[Phase | None, dict[str, Arm], dict[int, Arm]]:
    """The open phase and the arms by key, cached on the instance for repeated calls
    (e.g. a simulation assigning thousands of units of one experiment)."""
    cached = getattr(experiment, "_assignment_layout", None)
    if cached is not None:
        return cached
    phase = (
        Phase.objects.filter(experiment=experiment, ended_at__isnull=True)
        .order_by("-number")
        .first()
    )
    arms = list(Arm.objects.filter(experiment=experiment))
    layout = (phase, {arm.key: arm for arm in arms}, {arm.pk: arm for arm in arms})
    experiment._assignment_layout = layout
    return layout


# The hot path's statements: the model's table and column names (lower case, valid
# unquoted on SQLite and PostgreSQL); values are always parameters.
_META = Assignment._meta
_TABLE = _META.db_table
_EXPERIMENT, _PHASE, _ARM, _UNIT, _CREATED = (
    _META.get_field(name).column for name in ("experiment", "phase", "arm", "unit_id", "created_at")
)
_SELECT_SQL = (
    f"SELECT {_META.pk.column}, {_ARM} FROM {_TABLE} "  # noqa: S608 - the model's names
    f"WHERE {_EXPERIMENT} = %s AND {_PHASE} = %s AND {_UNIT} = %s"
)
_INSERT_SQL = (
    f"INSERT INTO {_TABLE} ({_EXPERIMENT}, {_PHASE}, {_ARM}, {_UNIT}, {_CREATED}) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, %s) "
    f"ON CONFLICT ({_EXPERIMENT}, {_PHASE}, {_UNIT}) DO NOTHING RETURNING {_META.pk.column}"
)
_QMARK = {sql: sql.replace("%s", "?") for sql in (_SELECT_SQL, _INSERT_SQL)}


@contextmanager
def _cursor():
    """``(cursor, sql)``: a cursor of the default connection and the SQL for it.

    On SQLite, unless queries are being logged (DEBUG, a test capturing queries), the
    DB-API cursor of Django's own connection (same transaction, same autocommit state),
    with ``?`` placeholders and Django's error wrapping: Django's cursor wrapper, its
    placeholder rewrite and its bookkeeping cost about a quarter of an assignment's CPU.
    Elsewhere, Django's cursor.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "sqlite" and not conn.queries_logged:
        conn.ensure_connection()
        cursor = conn.connection.cursor()
        try:
            with conn.wrap_database_errors:
                yield cursor, _QMARK.__getitem__
        finally:
            cursor.close()
    else:
        with conn.cursor() as cursor:
            yield cursor, _same


def _same(sql: str) -> str:
    return sql


def _now_param(conn):
    """Now, as the database parameter of a DateTimeField: what Django would send (on
    SQLite with UTC storage, the naive UTC text, without Django's conversions)."""
    if conn.vendor == "sqlite" and conn.timezone_name == "UTC":
        return str(datetime.now(UTC).replace(tzinfo=None))
    return conn.ops.adapt_datetimefield_value(timezone.now())


#: (phase id, unit id) of units this process has assigned or looked up: for those the
#: lookup goes first (one SELECT), for the others the INSERT does (one statement for a
#: new unit). Only the order of the two statements depends on it, never the answer, so a
#: stale entry (a database reset, another process) costs one statement more, nothing else.
_seen: dict[tuple[int, str], None] = {}
_SEEN_MAX = 100_000


def _remember(key: tuple[int, str]) -> None:
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen[key] = None


def _assignment(
    pk: int, *, experiment: Experiment, phase: Phase, arm: Arm, unit_id: str
) -> Assignment:
    """The row as a model instance, built the way Django unpickles one (``__new__`` and the
    field values; no ``__init__``, whose argument handling and per-field descriptors cost
    about a fifth of an assignment's CPU; Assignment has no init signal receivers), with
    the related objects straight in the relation cache."""
    assignment = Assignment.__new__(Assignment)
    state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS
    state.fields_cache = {"experiment": experiment, "phase": phase, "arm": arm}
    assignment.__dict__.update(
        _state=state,
        id=pk,
        experiment_id=experiment.pk,
        phase_id=phase.pk,
        arm_id=arm.pk,
        unit_id=unit_id,
        created_at=None,
    )
    return assignment


def assignment_get_or_create(*, experiment: Experiment, unit_id: str) -> Assignment | None:
    """The unit's arm in the experiment's open phase, persisted on first sight.

    None when the experiment is not running, has no open phase, or the unit falls outside
    the traffic coverage (not in the experiment, yet). The returned row carries its arm
    (``created_at`` is not read back).

    The hot path of every routed call, so it is plain SQL rather than ORM queries (which
    cost about 30 times more CPU here; see benchmarks/bench_assignment.py), one statement
    in the common cases: a unit this process has seen is looked up (``_seen``); any other
    unit gets its hashed arm inserted with ``INSERT ... ON CONFLICT DO NOTHING RETURNING
    id``, and only when that finds a row already there (or the hash is outside the
    coverage) is the row read back, and it wins (the unique constraint also settles a
    race between two processes: the first row wins). The values are validated by
    construction: the experiment, phase and arm are rows just read, the unit id is cut to
    its column's length.
    """
    if experiment.status != Experiment.Status.RUNNING or not unit_id:
        return None
    phase, arms, arms_by_id = _layout(experiment)
    if phase is None:
        return None
    unit_id = str(unit_id)[:255]
    seen_key = (phase.pk, unit_id)
    with _cursor() as (cursor, sql):
        row = None
        if seen_key in _seen:
            # Assigned before (as far as this process knows): its row is the answer.
            cursor.execute(sql(_SELECT_SQL), [experiment.pk, phase.pk, unit_id])
            row = cursor.fetchone()
        if row is None:
            index = assign_arm(
                seed=phase.hash_seed,
                unit_id=unit_id,
                weights=phase.weights,
                coverage=experiment.coverage,
                version=HASH_VERSION,
            )
            arm = arms.get(phase.arm_keys[index]) if 0 <= index < len(phase.arm_keys) else None
            if arm is not None:
                now = _now_param(connections[DEFAULT_DB_ALIAS])
                cursor.execute(sql(_INSERT_SQL), [experiment.pk, phase.pk, arm.pk, unit_id, now])
                inserted = cursor.fetchone()
                if inserted is not None:
                    _remember(seen_key)
                    return _assignment(
                        inserted[0], experiment=experiment, phase=phase, arm=arm, unit_id=unit_id
                    )
            # The unit already has a row (seen by another process, or assigned by one
            # between the hash and the INSERT), or the hash puts it outside the coverage
            # today: a row written earlier in the phase still wins.
            cursor.execute(sql(_SELECT_SQL), [experiment.pk, phase.pk, unit_id])
            row = cursor.fetchone()
    if row is None:
        return None
    _remember(seen_key)
    pk, arm_id = row
    arm = arms_by_id.get(arm_id) or Arm.objects.get(pk=arm_id)
    return _assignment(pk, experiment=experiment, phase=phase, arm=arm, unit_id=unit_id)


def arm_route(
    experiment: Experiment, arm: Arm, *, phase_id: int | None, in_experiment: bool = True
) -> ArmRoute:
    """The route to ``arm``: in the experiment for an assigned unit (or a shadow call),
    outside it when the arm serves everyone after the experiment ended."""
    return ArmRoute(
        experiment_key=experiment.key,
        arm_key=arm.key,
        strategy=arm.strategy,
        router_params=arm.router_params(),
        experiment_id=experiment.pk,
        arm_id=arm.pk,
        phase_id=phase_id,
        in_experiment=in_experiment,
    )


def route_for_unit(*, experiment: Experiment, unit_id: str) -> ArmRoute | None:
    """The route of a unit's call: its assigned arm while the experiment runs, the serving
    arm once it is over (stopped, concluded, rolled back), None otherwise."""
    if experiment.status == Experiment.Status.RUNNING:
        assignment = assignment_get_or_create(experiment=experiment, unit_id=unit_id)
        if assignment is None:
            return None
        return arm_route(experiment, assignment.arm, phase_id=assignment.phase_id)
    if experiment.serving_arm_id and experiment.status in (
        Experiment.Status.STOPPED,
        Experiment.Status.CONCLUDED,
    ):
        return arm_route(experiment, experiment.serving_arm, phase_id=None, in_experiment=False)
    return None
