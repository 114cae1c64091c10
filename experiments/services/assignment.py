"""Sticky assignment of units to arms, and the route a unit's call takes.

The arm comes from GrowthBook-compatible hashing (``experiments.bucketing``) of the unit
with the open phase's seed, weights and the experiment's traffic coverage; the first
time a unit is seen in a phase its arm is persisted as an ``Assignment`` row, and from
then on the row wins over the hash (so a later change of hashing or weights inside the
phase can never move a unit).
"""

from __future__ import annotations

from django.db import connection
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


# The hot path's two statements; identifiers are the model's (lower case, unquoted, valid
# on SQLite and PostgreSQL), values are always parameters.
_SELECT_SQL = (
    "SELECT id, arm_id FROM experiments_assignment "
    "WHERE experiment_id = %s AND phase_id = %s AND unit_id = %s"
)
_INSERT_SQL = (
    "INSERT INTO experiments_assignment (experiment_id, phase_id, arm_id, unit_id, created_at) "
    "VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (experiment_id, phase_id, unit_id) DO NOTHING RETURNING id"
)


def _assignment(
    pk: int, *, experiment: Experiment, phase: Phase, arm: Arm, unit_id: str
) -> Assignment:
    # Ids in, related objects straight into the relation cache: about half the cost of
    # passing the objects through the model's descriptors.
    assignment = Assignment(
        pk=pk,
        experiment_id=experiment.pk,
        phase_id=phase.pk,
        arm_id=arm.pk,
        unit_id=unit_id,
        created_at=None,
    )
    assignment._state.fields_cache.update(experiment=experiment, phase=phase, arm=arm)
    assignment._state.adding = False
    assignment._state.db = connection.alias
    return assignment


def assignment_get_or_create(*, experiment: Experiment, unit_id: str) -> Assignment | None:
    """The unit's arm in the experiment's open phase, persisted on first sight.

    None when the experiment is not running, has no open phase, or the unit falls outside
    the traffic coverage (not in the experiment, yet). The returned row carries its arm
    (``created_at`` is not read back).

    The hot path of every routed call, so it is two plain SQL statements rather than ORM
    queries (which cost about 30 times more CPU here; see benchmarks/bench_assignment.py):
    look the unit up; if it has no row, insert the hashed arm with ``ON CONFLICT DO
    NOTHING`` (the unique constraint settles a race between two processes: the first row
    wins and is read back). The values are validated by construction: the experiment,
    phase and arm are rows just read, the unit id is cut to its column's length.
    """
    if experiment.status != Experiment.Status.RUNNING or not unit_id:
        return None
    phase, arms, arms_by_id = _layout(experiment)
    if phase is None:
        return None
    unit_id = str(unit_id)[:255]
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_SQL, [experiment.pk, phase.pk, unit_id])
        row = cursor.fetchone()
        if row is None:
            index = assign_arm(
                seed=phase.hash_seed,
                unit_id=unit_id,
                weights=phase.weights,
                coverage=experiment.coverage,
                version=HASH_VERSION,
            )
            if index < 0 or index >= len(phase.arm_keys):
                return None
            arm = arms.get(phase.arm_keys[index])
            if arm is None:  # the phase names an arm deleted since: not assigned
                return None
            now = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(_INSERT_SQL, [experiment.pk, phase.pk, arm.pk, unit_id, now])
            inserted = cursor.fetchone()
            if inserted is not None:
                return _assignment(
                    inserted[0], experiment=experiment, phase=phase, arm=arm, unit_id=unit_id
                )
            # Another process assigned the unit between our two statements: its row wins.
            cursor.execute(_SELECT_SQL, [experiment.pk, phase.pk, unit_id])
            row = cursor.fetchone()
    pk, arm_id = row
    arm = arms_by_id.get(arm_id) or Arm.objects.get(pk=arm_id)
    return _assignment(pk, experiment=experiment, phase=phase, arm=arm, unit_id=unit_id)


def route_for_unit(*, experiment: Experiment, unit_id: str) -> ArmRoute | None:
    """The route of a unit's call: its assigned arm while the experiment runs, the serving
    arm once it is over (stopped, concluded, rolled back), None otherwise."""
    if experiment.status == Experiment.Status.RUNNING:
        assignment = assignment_get_or_create(experiment=experiment, unit_id=unit_id)
        if assignment is None:
            return None
        arm = assignment.arm
        return ArmRoute(
            experiment_key=experiment.key,
            arm_key=arm.key,
            strategy=arm.strategy,
            router_params=arm.router_params(),
            experiment_id=experiment.pk,
            arm_id=arm.pk,
            phase_id=assignment.phase_id,
            in_experiment=True,
        )
    if experiment.serving_arm_id and experiment.status in (
        Experiment.Status.STOPPED,
        Experiment.Status.CONCLUDED,
    ):
        arm = experiment.serving_arm
        return ArmRoute(
            experiment_key=experiment.key,
            arm_key=arm.key,
            strategy=arm.strategy,
            router_params=arm.router_params(),
            experiment_id=experiment.pk,
            arm_id=arm.pk,
            phase_id=None,
            in_experiment=False,
        )
    return None
