"""Experiment lifecycle services: state changes, validation messages, phases, audit log."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from experiments import services
from experiments.models import Arm, AuditLogEntry, Experiment, Phase
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db


def test_create_then_start_opens_phase_one_seeded_with_the_key(staff_user):
    """Starting a draft makes it running and opens phase 1 hashed with the experiment key."""
    experiment = make_experiment(key="rollout", status="draft", user=staff_user)
    assert experiment.status == Experiment.Status.DRAFT
    services.experiment_start(experiment=experiment, user=staff_user)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.started_at is not None
    phase = Phase.objects.get(experiment=experiment)
    assert (phase.number, phase.hash_seed) == (1, "rollout")
    assert phase.arm_keys == ["original_council", "smart_routing"]
    assert phase.weights == [0.5, 0.5]


def test_every_state_change_is_audited_with_who_and_what(staff_user):
    """Create, start, ramp, pause, resume, stop each leave an audit entry naming the user."""
    experiment = make_experiment(status="draft", traffic_percentage=1, user=staff_user)
    services.experiment_start(experiment=experiment, user=staff_user)
    services.experiment_ramp(experiment=experiment, user=staff_user)
    services.experiment_pause(experiment=experiment, user=staff_user)
    services.experiment_resume(experiment=experiment, user=staff_user)
    services.experiment_stop(experiment=experiment, user=staff_user)
    entries = list(AuditLogEntry.objects.filter(experiment=experiment).order_by("id"))
    assert [entry.action for entry in entries] == [
        "create",
        "start",
        "ramp",
        "pause",
        "resume",
        "stop",
    ]
    assert {entry.username for entry in entries} == {"ramp-owner"}
    ramp = entries[2]
    assert ramp.changes["before"]["traffic_percentage"] == 1
    assert ramp.changes["after"]["traffic_percentage"] == 5
    assert "from 1% to 5%" in ramp.message


def test_ramp_follows_the_default_schedule_and_refuses_past_the_end():
    """Ramp with no percentage steps 1 -> 5 -> 25 -> 50 -> 100, then says it is at the end."""
    experiment = make_experiment(traffic_percentage=1)
    seen = []
    for _ in range(4):
        services.experiment_ramp(experiment=experiment)
        seen.append(experiment.traffic_percentage)
    assert seen == [5, 25, 50, 100]
    with pytest.raises(ValidationError, match="already at 100%"):
        services.experiment_ramp(experiment=experiment)


def test_ramp_does_not_start_a_new_phase():
    """Ramping changes coverage only: the phase (and its seed) stays the same."""
    experiment = make_experiment(traffic_percentage=5)
    services.experiment_ramp(experiment=experiment, percentage=60)
    assert Phase.objects.filter(experiment=experiment).count() == 1


@pytest.mark.parametrize("percentage", [-1, 100.5, 250, "abc", float("nan")])
def test_ramp_refuses_a_percentage_outside_0_100(percentage):
    """A percentage outside 0-100 (or not a number) is refused with a message."""
    experiment = make_experiment(traffic_percentage=5)
    with pytest.raises(ValidationError, match="between 0 and 100"):
        services.experiment_ramp(experiment=experiment, percentage=percentage)
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 5


def test_ramp_of_a_stopped_experiment_is_refused():
    """A stopped experiment cannot be ramped; the message says why."""
    experiment = make_experiment(status="stopped")
    with pytest.raises(ValidationError, match="Cannot ramp experiment .* it is stopped"):
        services.experiment_ramp(experiment=experiment, percentage=50)


def test_weights_not_summing_to_100_are_refused():
    """Arms whose weights sum to 90 are refused, naming the sum."""
    with pytest.raises(ValidationError, match="sum to 100; they sum to 90"):
        make_experiment(weights=(40, 50), status="draft")


def test_fewer_than_two_arms_are_refused():
    """One arm is not an experiment."""
    with pytest.raises(ValidationError, match="at least two arms"):
        services.experiment_create(
            key="solo",
            name="Solo",
            arms=[{"key": "only", "strategy": "smart_routing", "weight": 100, "is_control": True}],
        )


def test_start_refuses_arms_changed_into_an_invalid_set():
    """Start re-validates the arms in the database (e.g. a weight edited to 70)."""
    experiment = make_experiment(status="draft")
    Arm.objects.filter(experiment=experiment, key="smart_routing").update(weight=70)
    with pytest.raises(ValidationError, match="they sum to 120"):
        services.experiment_start(experiment=experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.DRAFT


def test_two_running_experiments_on_the_same_unit_space_are_refused():
    """A second experiment on unit type 'user' cannot start while one runs; another type can."""
    make_experiment(key="first", unit_type="user")
    second = make_experiment(key="second", unit_type="user", status="draft")
    with pytest.raises(ValidationError, match="'first' is already running on the unit space"):
        services.experiment_start(experiment=second)
    other_space = make_experiment(key="scripts", unit_type="script", status="draft")
    services.experiment_start(experiment=other_space)
    assert other_space.status == Experiment.Status.RUNNING


def test_resume_is_refused_while_another_runs_on_the_same_units():
    """Resuming a paused experiment re-checks the unit-space conflict."""
    paused = make_experiment(key="paused-one", status="paused")
    make_experiment(key="now-running")
    with pytest.raises(ValidationError, match="'now-running' is already running"):
        services.experiment_resume(experiment=paused)


def test_invalid_transitions_say_what_to_do():
    """Pausing a draft or starting a running experiment is refused with a hint."""
    draft = make_experiment(status="draft")
    with pytest.raises(ValidationError, match="Cannot pause .* it is draft"):
        services.experiment_pause(experiment=draft)
    running = make_experiment(key="live", unit_type="team")
    with pytest.raises(ValidationError, match="use resume"):
        services.experiment_start(experiment=running)
    with pytest.raises(ValidationError, match="no traffic to roll back"):
        services.experiment_rollback(experiment=draft)


def test_stop_serves_the_control_arm_and_closes_the_phase():
    """Stopping sends everyone to the control arm and ends the open phase."""
    experiment = make_experiment()
    services.experiment_stop(experiment=experiment)
    assert experiment.status == Experiment.Status.STOPPED
    assert experiment.serving_arm.key == "original_council"
    assert experiment.ended_at is not None
    assert not Phase.objects.filter(experiment=experiment, ended_at__isnull=True).exists()


def test_conclude_ships_the_winner_and_refuses_an_unknown_arm():
    """Conclude with a winner serves it to all; an unknown arm key is refused by name."""
    experiment = make_experiment()
    with pytest.raises(ValidationError, match="has no arm 'nope'"):
        services.experiment_conclude(experiment=experiment, winner="nope")
    services.experiment_conclude(experiment=experiment, winner="smart_routing")
    assert experiment.status == Experiment.Status.CONCLUDED
    assert experiment.serving_arm.key == "smart_routing"


def test_rollback_sends_all_traffic_to_the_original_arm(staff_user):
    """Rollback of a running experiment stops it and serves the control arm, audited."""
    experiment = make_experiment()
    services.experiment_rollback(experiment=experiment, user=staff_user)
    assert experiment.status == Experiment.Status.STOPPED
    assert experiment.serving_arm.key == "original_council"
    entry = AuditLogEntry.objects.filter(experiment=experiment).first()
    assert entry.action == "rollback" and "original_council" in entry.message


def test_rollback_after_conclusion_keeps_it_concluded_but_serves_the_control():
    """A concluded experiment that shipped smart routing can still be rolled back."""
    experiment = make_experiment()
    services.experiment_conclude(experiment=experiment, winner="smart_routing")
    services.experiment_rollback(experiment=experiment)
    assert experiment.status == Experiment.Status.CONCLUDED
    assert experiment.serving_arm.key == "original_council"


def test_changing_weights_starts_a_new_phase_with_a_new_seed(staff_user):
    """After weights change, phase_sync opens phase 2 with another seed and audits it."""
    experiment = make_experiment(key="reweigh")
    Arm.objects.filter(experiment=experiment, key="original_council").update(weight=20)
    Arm.objects.filter(experiment=experiment, key="smart_routing").update(weight=80)
    phase = services.experiment_phase_sync(experiment=experiment, user=staff_user)
    assert phase.number == 2
    assert phase.hash_seed == "reweigh:phase-2"
    assert phase.weights == [0.2, 0.8]
    assert Phase.objects.get(experiment=experiment, number=1).ended_at is not None
    assert AuditLogEntry.objects.filter(experiment=experiment, action="new_phase").count() == 1
    # Nothing changed since: no further phase.
    assert services.experiment_phase_sync(experiment=experiment) is None


def test_audit_entry_survives_the_experiment():
    """Deleting an experiment keeps its audit entries, with the key as text."""
    experiment = make_experiment(key="gone-soon")
    experiment.delete()
    entries = AuditLogEntry.objects.filter(experiment_key="gone-soon")
    assert entries.count() == 2
    assert all(entry.experiment_id is None for entry in entries)
