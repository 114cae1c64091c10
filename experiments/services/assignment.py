"""Sticky assignment of units to arms, and the route a unit's call takes.

The arm comes from GrowthBook-compatible hashing (``experiments.bucketing``) of the unit
with the open phase's seed, weights and the experiment's traffic coverage; the first
time a unit is seen in a phase its arm is persisted as an ``Assignment`` row, and from
then on the row wins over the hash (so a later change of hashing or weights inside the
phase can never move a unit).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

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


def assignment_get_or_create(*, experiment: Experiment, unit_id: str) -> Assignment | None:
    """The unit's arm in the experiment's open phase, persisted on first sight.

    None when the experiment is not running, has no open phase, or the unit falls outside
    the traffic coverage (not in the experiment, yet).
    """
    if experiment.status != Experiment.Status.RUNNING or not unit_id:
        return None
    phase, arms, arms_by_id = _layout(experiment)
    if phase is None:
        return None
    unit_id = str(unit_id)[:255]
    existing = (
        Assignment.objects.filter(experiment=experiment, phase=phase, unit_id=unit_id)
        .only("id", "arm_id", "unit_id", "phase_id", "experiment_id")
        .first()
    )
    if existing is not None:
        if existing.arm_id in arms_by_id:
            existing.arm = arms_by_id[existing.arm_id]
        return existing
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
    if arm is None:  # the phase names an arm that was deleted since: treat as not assigned
        return None
    assignment = Assignment(experiment=experiment, phase=phase, arm=arm, unit_id=unit_id)
    # The related rows were just read and the unique constraint is enforced by the database
    # (a race is handled below), so full_clean skips their lookups on this hot path.
    assignment.full_clean(
        exclude=["experiment", "phase", "arm"], validate_unique=False, validate_constraints=False
    )
    try:
        with transaction.atomic():
            assignment.save()
    except IntegrityError:
        # Another process assigned the same unit first: its row wins.
        assignment = Assignment.objects.select_related("arm").get(
            experiment=experiment, phase=phase, unit_id=unit_id
        )
    return assignment


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
