"""Sticky assignment: deterministic, persisted, GrowthBook-compatible, stable under ramping."""

from __future__ import annotations

import pytest

from experiments import services
from experiments.bucketing import assign_arm
from experiments.models import Arm, Assignment, Phase
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db


def test_assignment_matches_the_growthbook_hash_of_the_experiment_key():
    """Phase 1 buckets a unit exactly as a GrowthBook SDK would with the experiment key."""
    experiment = make_experiment(key="gb-compatible")
    for unit in ("alice", "bob", "carol", "dave", "erin"):
        assignment = services.assignment_get_or_create(experiment=experiment, unit_id=unit)
        expected = assign_arm(seed="gb-compatible", unit_id=unit, weights=[0.5, 0.5])
        assert assignment.arm.key == ["original_council", "smart_routing"][expected]


def test_assignment_is_sticky_and_persisted_once():
    """The same unit gets the same arm and one Assignment row, however often it is asked."""
    experiment = make_experiment()
    first = services.assignment_get_or_create(experiment=experiment, unit_id="user-7")
    for _ in range(5):
        again = services.assignment_get_or_create(experiment=experiment, unit_id="user-7")
        assert again.pk == first.pk and again.arm_id == first.arm_id
    assert Assignment.objects.filter(experiment=experiment, unit_id="user-7").count() == 1


def test_the_persisted_row_wins_over_the_hash():
    """A stored assignment is returned even when the hash would say otherwise."""
    experiment = make_experiment()
    natural = services.assignment_get_or_create(experiment=experiment, unit_id="pinned")
    other = Arm.objects.filter(experiment=experiment).exclude(pk=natural.arm_id).get()
    Assignment.objects.filter(pk=natural.pk).update(arm=other)
    fresh = type(experiment).objects.get(pk=experiment.pk)
    assert services.assignment_get_or_create(experiment=fresh, unit_id="pinned").arm == other


def test_units_outside_the_coverage_are_not_assigned():
    """At 10% traffic about 10% of 2,000 units are assigned; the rest get None."""
    experiment = make_experiment(traffic_percentage=10)
    assigned = [
        services.assignment_get_or_create(experiment=experiment, unit_id=f"u{i}")
        for i in range(2000)
    ]
    share = sum(a is not None for a in assigned) / len(assigned)
    assert 0.07 < share < 0.13
    assert Assignment.objects.filter(experiment=experiment).count() == sum(
        a is not None for a in assigned
    )


@pytest.mark.parametrize("status", ["draft", "paused", "stopped", "concluded"])
def test_only_running_experiments_assign(status):
    """Draft, paused, stopped and concluded experiments assign no unit."""
    experiment = make_experiment(status=status)
    assert services.assignment_get_or_create(experiment=experiment, unit_id="u1") is None
    assert not Assignment.objects.filter(experiment=experiment).exists()


def test_ramping_through_the_schedule_moves_no_persisted_unit():
    """Ramp 1 -> 5 -> 25 -> 50 -> 100 with 1,000 persisted units: each keeps its first arm.

    (The 100,000-unit version of this property runs on the pure bucketing functions.)"""
    experiment = make_experiment(traffic_percentage=1)
    units = [f"unit-{i}" for i in range(1000)]
    first_arm: dict[str, int] = {}
    for step in range(5):
        if step:
            services.experiment_ramp(experiment=experiment)
        for unit in units:
            assignment = services.assignment_get_or_create(experiment=experiment, unit_id=unit)
            if assignment is None:
                assert unit not in first_arm  # once in, always in
                continue
            assert first_arm.setdefault(unit, assignment.arm_id) == assignment.arm_id
    assert experiment.traffic_percentage == 100
    assert len(first_arm) == len(units)
    assert Phase.objects.filter(experiment=experiment).count() == 1


def test_route_for_unit_while_running_and_after_rollback():
    """Running: the assigned arm's strategy and params; rolled back: the control, uncounted."""
    experiment = make_experiment(key="routes")
    route = None
    for unit in (f"r{i}" for i in range(50)):
        route = services.route_for_unit(experiment=experiment, unit_id=unit)
        if route.arm_key == "smart_routing":
            break
    assert route.strategy == "smart_routing"
    assert route.router_params == {"escalation_threshold": 0.6}
    assert route.in_experiment and route.phase_id is not None
    services.experiment_rollback(experiment=experiment)
    after = services.route_for_unit(experiment=experiment, unit_id="r1")
    assert (after.arm_key, after.strategy, after.in_experiment) == (
        "original_council",
        "original_council",
        False,
    )


def test_assignment_queries_are_pinned(django_assert_num_queries, monkeypatch):
    """A new unit costs phase + arms + insert cold and one INSERT ... ON CONFLICT DO NOTHING
    once the experiment's layout is cached (no lookup first); a unit this process has
    seen costs one lookup; a unit assigned by another process costs the insert that does
    nothing plus the lookup."""
    from experiments.services import assignment as module

    monkeypatch.setattr(module, "_seen", {})
    experiment = make_experiment()
    with django_assert_num_queries(3):
        services.assignment_get_or_create(experiment=experiment, unit_id="q-1")
    with django_assert_num_queries(1) as new_unit:
        services.assignment_get_or_create(experiment=experiment, unit_id="q-2")
    assert "ON CONFLICT" in new_unit.captured_queries[0]["sql"]
    with django_assert_num_queries(1) as known_unit:
        first = services.assignment_get_or_create(experiment=experiment, unit_id="q-1")
    assert known_unit.captured_queries[0]["sql"].startswith("SELECT")
    module._seen.clear()  # as if another process had assigned it
    with django_assert_num_queries(2):
        again = services.assignment_get_or_create(experiment=experiment, unit_id="q-1")
    assert (again.pk, again.arm_id) == (first.pk, first.arm_id)


def test_a_stale_seen_entry_only_costs_a_statement(monkeypatch):
    """A unit remembered as seen but without a row (e.g. the database was reset) is
    assigned as new: the hint orders the statements, it never decides the answer."""
    from experiments.models import Assignment
    from experiments.services import assignment as module

    experiment = make_experiment()
    phase_id = experiment.phases.get().pk
    monkeypatch.setattr(module, "_seen", {(phase_id, "ghost"): None})
    assignment = services.assignment_get_or_create(experiment=experiment, unit_id="ghost")
    assert assignment is not None
    assert Assignment.objects.filter(experiment=experiment, unit_id="ghost").count() == 1


def test_a_concurrent_insert_of_the_same_unit_keeps_the_first_row(monkeypatch):
    """If another process stores the unit between our hash and our insert, our insert
    does nothing and the other process's row (and arm) wins."""
    from experiments.models import Assignment, Phase
    from experiments.services import assignment as module

    experiment = make_experiment()
    phase = Phase.objects.get(experiment=experiment)
    hashed = ["original_council", "smart_routing"][
        assign_arm(seed=phase.hash_seed, unit_id="raced", weights=phase.weights)
    ]
    other = Arm.objects.filter(experiment=experiment).exclude(key=hashed).get()
    real_assign_arm = module.assign_arm

    def assign_while_another_process_inserts(**kwargs):
        Assignment.objects.create(experiment=experiment, phase=phase, arm=other, unit_id="raced")
        return real_assign_arm(**kwargs)

    monkeypatch.setattr(module, "assign_arm", assign_while_another_process_inserts)
    assignment = services.assignment_get_or_create(experiment=experiment, unit_id="raced")
    assert assignment.arm == other
    assert Assignment.objects.filter(experiment=experiment, unit_id="raced").count() == 1


def test_a_persisted_unit_keeps_its_arm_when_the_hash_would_leave_it_out():
    """A unit assigned earlier in the phase keeps its row even if the coverage now puts
    its hash outside every arm (the row wins over the hash)."""
    experiment = make_experiment(traffic_percentage=100.0)
    first = services.assignment_get_or_create(experiment=experiment, unit_id="kept")
    experiment.traffic_percentage = 0.0
    again = services.assignment_get_or_create(experiment=experiment, unit_id="kept")
    assert again is not None and (again.pk, again.arm_id) == (first.pk, first.arm_id)
    assert services.assignment_get_or_create(experiment=experiment, unit_id="new") is None


def test_the_returned_assignment_is_a_usable_model_instance(django_assert_num_queries):
    """The returned row equals the stored one (same id, experiment, phase, arm, unit), is
    not 'adding', and carries its arm and experiment without another query."""
    from experiments.models import Assignment

    experiment = make_experiment()
    assignment = services.assignment_get_or_create(experiment=experiment, unit_id="inst")
    stored = Assignment.objects.get(pk=assignment.pk)
    assert assignment == stored and assignment._state.adding is False
    for name in ("experiment_id", "phase_id", "arm_id", "unit_id"):
        assert getattr(assignment, name) == getattr(stored, name)
    arm_key = stored.arm.key
    with django_assert_num_queries(0):
        assert assignment.arm.key == arm_key
        assert assignment.experiment.key == experiment.key
        assert str(assignment) == f"inst -> {arm_key}"
