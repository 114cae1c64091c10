"""An experiment's life: create, start, pause, resume, ramp, stop, conclude, roll back.

Every state change is validated first (a ``ValidationError`` whose message says what to
fix), happens in one transaction with the experiment row locked, and leaves an
``AuditLogEntry`` (who, when, what, before/after). Phases: a new phase (with a new hash
seed) starts whenever the arms or their weights change; ramping the traffic percentage
never starts one, so ramping never moves a unit between arms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.models import Arm, AuditLogEntry, Experiment, Phase

Status = Experiment.Status
Action = AuditLogEntry.Action


# --- Audit ---------------------------------------------------------------------------------


def audit_log_record(
    *,
    experiment: Experiment,
    user: Any | None,
    action: str,
    message: str = "",
    changes: dict | None = None,
) -> AuditLogEntry:
    """Append one entry to the audit log (``user`` None or anonymous: the system)."""
    real_user = user if getattr(user, "is_authenticated", False) and user.pk else None
    entry = AuditLogEntry(
        experiment=experiment,
        experiment_key=experiment.key,
        user=real_user,
        username=real_user.get_username() if real_user else "",
        action=action,
        message=message,
        changes=changes or {},
    )
    entry.full_clean()
    entry.save()
    return entry


# --- Validation ----------------------------------------------------------------------------


def experiment_validate_arms(*, arms: Sequence[Arm] | Sequence[dict]) -> None:
    """Refuse arm sets an experiment cannot run: fewer than two, weights not summing to
    100, no single control arm, or duplicate keys. ``arms`` are Arm objects or dicts with
    ``key``, ``weight`` and ``is_control``."""

    def field(arm, name, default=None):
        return arm.get(name, default) if isinstance(arm, dict) else getattr(arm, name, default)

    errors: list[str] = []
    if len(arms) < 2:
        errors.append(
            f"An experiment needs at least two arms (e.g. original_council and smart_routing); "
            f"it has {len(arms)}."
        )
    total = sum(int(field(arm, "weight", 0) or 0) for arm in arms)
    if arms and total != 100:
        errors.append(f"Arm weights must sum to 100; they sum to {total}.")
    controls = [arm for arm in arms if field(arm, "is_control", False)]
    if arms and len(controls) != 1:
        errors.append(
            "Mark exactly one arm as the control (the original arm that rollback sends "
            f"all traffic to); {len(controls)} are marked."
        )
    keys = [field(arm, "key") for arm in arms]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        errors.append(f"Arm keys must be unique within an experiment: {', '.join(duplicates)}.")
    if errors:
        raise ValidationError(errors)


def _validate_percentage(percentage: float) -> float:
    try:
        value = float(percentage)
    except (TypeError, ValueError):
        raise ValidationError(
            f"Traffic percentage must be a number between 0 and 100; got {percentage!r}."
        ) from None
    if not (0.0 <= value <= 100.0) or value != value:
        raise ValidationError(f"Traffic percentage must be between 0 and 100; got {percentage}.")
    return value


def _validate_no_running_conflict(experiment: Experiment) -> None:
    """Two running experiments on the same unit space would both claim the same units."""
    other = (
        Experiment.objects.filter(status=Status.RUNNING, unit_type=experiment.unit_type)
        .exclude(pk=experiment.pk)
        .only("key")
        .first()
    )
    if other is not None:
        raise ValidationError(
            f"Experiment {other.key!r} is already running on the unit space "
            f"{experiment.unit_type!r}: two running experiments would claim the same units. "
            f"Pause or stop {other.key!r} first, or give this experiment another unit type."
        )


def _require_status(experiment: Experiment, allowed: Iterable[str], verb: str, hint: str) -> None:
    allowed = tuple(allowed)
    if experiment.status not in allowed:
        raise ValidationError(
            f"Cannot {verb} experiment {experiment.key!r}: it is {experiment.status}. {hint}"
        )


def _locked(experiment: Experiment) -> Experiment:
    """Lock the experiment's row for the rest of the transaction and re-read it into the
    caller's instance, so the caller sees the change the service makes."""
    list(Experiment.objects.select_for_update().filter(pk=experiment.pk).values_list("pk"))
    experiment.refresh_from_db()
    return experiment


def _ordered_arms(experiment: Experiment) -> list[Arm]:
    return list(Arm.objects.filter(experiment=experiment).order_by("position", "id"))


def _control_arm(arms: Sequence[Arm]) -> Arm | None:
    for arm in arms:
        if arm.is_control:
            return arm
    for arm in arms:
        if arm.strategy == "original_council":
            return arm
    return arms[0] if arms else None


def _save(experiment: Experiment, fields: list[str]) -> None:
    experiment.full_clean()
    experiment.save(update_fields=[*fields, "updated_at"])


# --- Phases --------------------------------------------------------------------------------


def phase_current(*, experiment: Experiment) -> Phase | None:
    """The open phase of an experiment (None before it first starts)."""
    return (
        Phase.objects.filter(experiment=experiment, ended_at__isnull=True)
        .order_by("-number")
        .first()
    )


def _phase_layout(arms: Sequence[Arm]) -> tuple[list[str], list[float]]:
    return [arm.key for arm in arms], [arm.weight / 100.0 for arm in arms]


def _phase_open(*, experiment: Experiment, arms: Sequence[Arm]) -> Phase:
    now = timezone.now()
    last = Phase.objects.filter(experiment=experiment).order_by("-number").first()
    Phase.objects.filter(experiment=experiment, ended_at__isnull=True).update(ended_at=now)
    number = (last.number + 1) if last else 1
    arm_keys, weights = _phase_layout(arms)
    # Phase 1 hashes with the experiment key, like a GrowthBook experiment of that key;
    # later phases re-randomise with a new seed.
    seed = experiment.key if number == 1 else f"{experiment.key}:phase-{number}"
    phase = Phase(
        experiment=experiment, number=number, hash_seed=seed, arm_keys=arm_keys, weights=weights
    )
    phase.full_clean()
    phase.save()
    return phase


@transaction.atomic
def experiment_phase_sync(
    *, experiment: Experiment, user: Any | None = None, force: bool = False
) -> Phase | None:
    """Start a new phase if the arms or weights differ from the open phase's (or, with
    ``force``, because an arm's strategy or router parameters changed).

    Call it after arms change. It does nothing for draft, stopped or concluded
    experiments (their next start opens a phase). Returns the new phase, or None.
    """
    experiment = _locked(experiment)
    if experiment.status not in (Status.RUNNING, Status.PAUSED):
        return None
    arms = _ordered_arms(experiment)
    experiment_validate_arms(arms=arms)
    current = phase_current(experiment=experiment)
    arm_keys, weights = _phase_layout(arms)
    unchanged = (
        current is not None and current.arm_keys == arm_keys and _same(current.weights, weights)
    )
    if unchanged and not force:
        return None
    phase = _phase_open(experiment=experiment, arms=arms)
    audit_log_record(
        experiment=experiment,
        user=user,
        action=Action.NEW_PHASE,
        message=f"Arms changed: phase {phase.number} starts with a new hash seed.",
        changes={
            "before": {"arm_keys": current.arm_keys, "weights": current.weights}
            if current
            else None,
            "after": {"arm_keys": arm_keys, "weights": weights},
        },
    )
    return phase


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-9 for x, y in zip(a, b, strict=True))


# --- Create --------------------------------------------------------------------------------


@transaction.atomic
def experiment_create(
    *,
    key: str,
    name: str,
    arms: Sequence[dict],
    user: Any | None = None,
    **fields: Any,
) -> Experiment:
    """Create a draft experiment with its arms (dicts of Arm fields, in bucket order)."""
    experiment_validate_arms(arms=arms)
    experiment = Experiment(
        key=key,
        name=name,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        **fields,
    )
    experiment.full_clean()
    experiment.save()
    for position, spec in enumerate(arms):
        arm = Arm(
            experiment=experiment,
            position=spec.get("position", position),
            **{name: value for name, value in spec.items() if name != "position"},
        )
        arm.full_clean()
        arm.save()
    audit_log_record(
        experiment=experiment,
        user=user,
        action=Action.CREATE,
        message=f"Created with arms {', '.join(spec['key'] for spec in arms)}.",
        changes={"after": {"arms": [dict(spec) for spec in arms], **_snapshot(experiment)}},
    )
    return experiment


def _snapshot(experiment: Experiment) -> dict:
    return {
        "status": experiment.status,
        "traffic_percentage": experiment.traffic_percentage,
        "serving_arm": experiment.serving_arm.key if experiment.serving_arm_id else None,
    }


@dataclass
class _Change:
    """One audited state change: the snapshot before, and the message said of it."""

    before: dict
    message: str = ""


@contextmanager
def _audited(experiment: Experiment, *, user: Any | None, action: str) -> Iterator[_Change]:
    """Snapshot the experiment, let the block change it (and set the message), then write
    the audit entry with the before and after snapshots."""
    change = _Change(before=_snapshot(experiment))
    yield change
    audit_log_record(
        experiment=experiment,
        user=user,
        action=action,
        message=change.message,
        changes={"before": change.before, "after": _snapshot(experiment)},
    )


# --- State changes -------------------------------------------------------------------------


@transaction.atomic
def experiment_start(*, experiment: Experiment, user: Any | None = None) -> Experiment:
    """Start a draft experiment: validate its arms, check no other running experiment
    claims the same units, and open phase 1."""
    experiment = _locked(experiment)
    _require_status(experiment, [Status.DRAFT], "start", "Only a draft starts; use resume.")
    arms = _ordered_arms(experiment)
    experiment_validate_arms(arms=arms)
    _validate_no_running_conflict(experiment)
    with _audited(experiment, user=user, action=Action.START) as change:
        experiment.status = Status.RUNNING
        experiment.started_at = experiment.started_at or timezone.now()
        experiment.ended_at = None
        experiment.serving_arm = None
        _save(experiment, ["status", "started_at", "ended_at", "serving_arm"])
        phase = phase_current(experiment=experiment) or _phase_open(
            experiment=experiment, arms=arms
        )
        change.message = (
            f"Started at {experiment.traffic_percentage:g}% of traffic (phase {phase.number})."
        )
    return experiment


@transaction.atomic
def experiment_pause(*, experiment: Experiment, user: Any | None = None) -> Experiment:
    """Pause a running experiment: no new assignments, calls run the default strategy."""
    experiment = _locked(experiment)
    _require_status(experiment, [Status.RUNNING], "pause", "Only a running experiment pauses.")
    with _audited(experiment, user=user, action=Action.PAUSE) as change:
        experiment.status = Status.PAUSED
        _save(experiment, ["status"])
        change.message = "Paused."
    return experiment


@transaction.atomic
def experiment_resume(*, experiment: Experiment, user: Any | None = None) -> Experiment:
    """Resume a paused experiment; units keep their arms unless the arms changed."""
    experiment = _locked(experiment)
    _require_status(experiment, [Status.PAUSED], "resume", "Only a paused experiment resumes.")
    experiment_validate_arms(arms=_ordered_arms(experiment))
    _validate_no_running_conflict(experiment)
    with _audited(experiment, user=user, action=Action.RESUME) as change:
        experiment.status = Status.RUNNING
        _save(experiment, ["status"])
        change.message = "Resumed."
    experiment_phase_sync(experiment=experiment, user=user)
    return experiment


def ramp_next_step(*, experiment: Experiment) -> float | None:
    """The next percentage of the experiment's ramp schedule above its current one."""
    schedule = sorted(float(step) for step in (experiment.ramp_schedule or []))
    for step in schedule:
        if step > experiment.traffic_percentage + 1e-9:
            return step
    return None


@transaction.atomic
def experiment_ramp(
    *, experiment: Experiment, user: Any | None = None, percentage: float | None = None
) -> Experiment:
    """Set the share of units in the experiment (default: the schedule's next step).

    Coverage only lengthens or shortens each arm's bucket range from its start, so a
    unit never changes arm, and no new phase starts.
    """
    experiment = _locked(experiment)
    _require_status(
        experiment,
        [Status.DRAFT, Status.RUNNING, Status.PAUSED],
        "ramp",
        "A stopped or concluded experiment no longer takes traffic; create a new one.",
    )
    if percentage is None:
        percentage = ramp_next_step(experiment=experiment)
        if percentage is None:
            raise ValidationError(
                f"Experiment {experiment.key!r} is already at {experiment.traffic_percentage:g}%, "
                f"the last step of its ramp schedule {experiment.ramp_schedule}."
            )
    value = _validate_percentage(percentage)
    with _audited(experiment, user=user, action=Action.RAMP) as change:
        experiment.traffic_percentage = value
        _save(experiment, ["traffic_percentage"])
        change.message = (
            f"Ramped from {change.before['traffic_percentage']:g}% to {value:g}% of traffic."
        )
    return experiment


def _end(experiment: Experiment, *, status: str, serving_arm: Arm | None) -> None:
    experiment.status = status
    experiment.ended_at = experiment.ended_at or timezone.now()
    experiment.serving_arm = serving_arm
    _save(experiment, ["status", "ended_at", "serving_arm"])
    Phase.objects.filter(experiment=experiment, ended_at__isnull=True).update(
        ended_at=experiment.ended_at
    )


@transaction.atomic
def experiment_stop(*, experiment: Experiment, user: Any | None = None) -> Experiment:
    """Stop a running or paused experiment; every unit then gets the control arm."""
    experiment = _locked(experiment)
    _require_status(
        experiment, [Status.RUNNING, Status.PAUSED], "stop", "Only a running or paused one stops."
    )
    with _audited(experiment, user=user, action=Action.STOP) as change:
        control = _control_arm(_ordered_arms(experiment))
        _end(experiment, status=Status.STOPPED, serving_arm=control)
        change.message = (
            f"Stopped; all traffic goes to the control arm {control.key if control else '-'}."
        )
    return experiment


@transaction.atomic
def experiment_conclude(
    *, experiment: Experiment, user: Any | None = None, winner: Arm | str | None = None
) -> Experiment:
    """Conclude an experiment and ship ``winner`` (an arm or arm key; default: the control)
    to all traffic."""
    experiment = _locked(experiment)
    _require_status(
        experiment,
        [Status.RUNNING, Status.PAUSED, Status.STOPPED],
        "conclude",
        "Start it first, or it is already concluded.",
    )
    arms = _ordered_arms(experiment)
    if winner is None:
        chosen = _control_arm(arms)
    else:
        winner_key = winner.key if isinstance(winner, Arm) else str(winner)
        chosen = next((arm for arm in arms if arm.key == winner_key), None)
        if chosen is None:
            raise ValidationError(
                f"Experiment {experiment.key!r} has no arm {winner_key!r}; "
                f"choose one of {', '.join(arm.key for arm in arms)}."
            )
    with _audited(experiment, user=user, action=Action.CONCLUDE) as change:
        _end(experiment, status=Status.CONCLUDED, serving_arm=chosen)
        change.message = f"Concluded; arm {chosen.key} ({chosen.strategy}) now serves all traffic."
    return experiment


@transaction.atomic
def experiment_rollback(*, experiment: Experiment, user: Any | None = None) -> Experiment:
    """Send all traffic back to the original (control) arm, now: the emergency exit.

    A running or paused experiment is stopped; a concluded one keeps its status but
    serves the control arm again.
    """
    experiment = _locked(experiment)
    _require_status(
        experiment,
        [Status.RUNNING, Status.PAUSED, Status.STOPPED, Status.CONCLUDED],
        "roll back",
        "A draft has no traffic to roll back.",
    )
    control = _control_arm(_ordered_arms(experiment))
    with _audited(experiment, user=user, action=Action.ROLLBACK) as change:
        status = Status.CONCLUDED if experiment.status == Status.CONCLUDED else Status.STOPPED
        _end(experiment, status=status, serving_arm=control)
        change.message = (
            f"Rolled back: all traffic goes to the original arm {control.key if control else '-'}."
        )
    return experiment
