"""`routing simulate` and `routing demo-seed`: traffic through assignment, queue, worker,
record (fakeredis and an in-process worker here; real workers in
tests/experiments/test_rq_integration.py)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from experiments.models import AuditLogEntry, Experiment, RoutedCall
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db


def _routing(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("routing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_simulate_sync_records_every_call_with_shadow_pairs(fake_redis):
    """--sync runs N requests in-process: each is assigned, recorded, and some shadowed."""
    experiment = make_experiment(key="sim")
    out, err = _routing(
        "simulate",
        "--experiment",
        "sim",
        "--requests",
        "16",
        "--units",
        "6",
        "--shadow",
        "0.5",
        "--sync",
        "--json",
    )
    summary = json.loads(out)
    primaries = RoutedCall.objects.filter(experiment=experiment, is_shadow=False)
    shadows = RoutedCall.objects.filter(experiment=experiment, is_shadow=True)
    assert summary["requests"] == primaries.count() == 16
    assert summary["shadow_calls"] == shadows.count() > 0
    assert summary["finished"] == 16 + shadows.count()
    assert set(primaries.values_list("status", flat=True)) == {"success"}
    assert primaries.values("unit_id").distinct().count() <= 6
    assert sum(row["calls"] for row in summary["by_arm"].values()) == 16
    assert all(call.paired_call_id for call in shadows)
    assert "run" in err  # the progress line


def test_simulate_is_deterministic_for_a_seed(fake_redis):
    """The same seed sends the same requests from the same units."""
    make_experiment(key="seeded")
    _routing("simulate", "--experiment", "seeded", "--requests", "5", "--sync", "--seed", "7")
    first = list(RoutedCall.objects.order_by("id").values_list("unit_id", "request_payload"))
    RoutedCall.objects.all().delete()
    _routing("simulate", "--experiment", "seeded", "--requests", "5", "--sync", "--seed", "7")
    second = list(RoutedCall.objects.order_by("id").values_list("unit_id", "request_payload"))
    strip = [(unit, {k: v for k, v in p.items() if k != "_route"}) for unit, p in first]
    assert strip == [(unit, {k: v for k, v in p.items() if k != "_route"}) for unit, p in second]


def test_simulate_through_the_queue_and_a_worker(fake_redis, django_capture_on_commit_callbacks):
    """Without --sync the calls go on the routing queue and a worker records them."""
    import django_rq
    from rq import SimpleWorker, Worker

    experiment = make_experiment(key="queued")
    queue = django_rq.get_queue("routing")
    Worker([queue], connection=queue.connection, name="listener").register_birth()
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = _routing(
            "simulate",
            "--experiment",
            "queued",
            "--requests",
            "8",
            "--shadow",
            "0",
            "--no-wait",
            "--json",
        )
    assert json.loads(out)["mode"] == "enqueued only"
    assert queue.count == 8
    assert set(RoutedCall.objects.values_list("status", flat=True)) == {"queued"}
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    calls = RoutedCall.objects.filter(experiment=experiment)
    assert calls.count() == 8
    assert set(calls.values_list("status", flat=True)) == {"success"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "ghost", "--requests", "5"], "No experiment with key 'ghost'"),
        (["--experiment", "live", "--requests", "0"], "--requests must be between 1"),
        (["--experiment", "live", "--requests", "5", "--shadow", "2"], "--shadow is a share"),
        (["--experiment", "live", "--requests", "5", "--units", "0"], "--units must be at least"),
    ],
)
def test_simulate_refuses_bad_input_with_a_message(fake_redis, args, message):
    """Bad options end in a CommandError that says what to fix."""
    make_experiment(key="live")
    with pytest.raises(CommandError, match=message):
        _routing("simulate", *args)


def test_simulate_refuses_an_experiment_that_is_not_running(fake_redis):
    """A paused experiment assigns nobody: the command says to resume it."""
    make_experiment(key="resting", status="paused")
    with pytest.raises(CommandError, match="is paused.*Start or resume it"):
        _routing("simulate", "--experiment", "resting", "--requests", "3", "--sync")


def test_simulate_without_a_worker_says_how_to_start_one(fake_redis):
    """No worker on the routing queue: the error names the rqworker command and --sync."""
    make_experiment(key="lonely")
    with pytest.raises(CommandError, match="rqworker routing shadow default.*--sync"):
        _routing("simulate", "--experiment", "lonely", "--requests", "3")
    assert not RoutedCall.objects.exists()


def test_simulate_with_redis_down_says_so(monkeypatch):
    """Redis unreachable: a CommandError, not a traceback."""
    import django_rq
    from redis.exceptions import ConnectionError as RedisConnectionError

    def down(name):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(django_rq, "get_queue", down)
    make_experiment(key="no-redis")
    with pytest.raises(CommandError, match="Redis is not reachable"):
        _routing("simulate", "--experiment", "no-redis", "--requests", "3")


def test_simulate_sync_judges_the_shadow_pairs_in_process(fake_redis, settings):
    """--sync has no worker for the judge queue: each completed pair is judged in-process,
    by the simulated provider, and labelled so."""
    from experiments.models import QualitySignal

    settings.QUALITY_JUDGE_SHARE = 1.0
    experiment = make_experiment(key="judged")
    _routing("simulate", "--experiment", "judged", "--requests", "6", "--shadow", "1", "--sync")
    judged = QualitySignal.objects.filter(source="judge", call__experiment=experiment)
    assert judged.count() == 6
    assert all(signal.simulated and not signal.call.arm.is_control for signal in judged)
    assert all("simulated" in signal.detail["simulated"] for signal in judged)


def test_demo_seed_creates_a_ramped_running_experiment_and_tops_it_up(fake_redis):
    """demo-seed makes smart-routing-rollout (control original_council), ramps it 1 -> 100%
    in the audit log, seeds N calls, and a second run adds nothing."""
    out, _ = _routing("demo-seed", "--requests", "12", "--sync")
    experiment = Experiment.objects.get(key="smart-routing-rollout")
    assert experiment.status == "running" and experiment.traffic_percentage == 100
    arms = {arm.key: arm for arm in experiment.arms.all()}
    assert arms["original_council"].is_control and arms["smart_routing"].strategy == (
        "smart_routing"
    )
    ramps = AuditLogEntry.objects.filter(experiment=experiment, action="ramp").count()
    assert ramps == 4
    assert RoutedCall.objects.filter(experiment=experiment, is_shadow=False).count() == 12
    assert "12 requests" in out
    again, _ = _routing("demo-seed", "--requests", "12", "--sync")
    assert "already holds 12 calls; nothing to add" in again
    assert RoutedCall.objects.filter(experiment=experiment, is_shadow=False).count() == 12


def test_demo_seed_without_a_worker_runs_the_calls_itself(fake_redis):
    """When no worker shows up, demo-seed says so and runs the calls in-process."""
    _, err = _routing("demo-seed", "--requests", "4", "--worker-wait", "0")
    assert "No RQ worker is listening" in err
    assert RoutedCall.objects.filter(status="success", is_shadow=False).count() == 4


def test_demo_seed_reports_a_conflicting_running_experiment(fake_redis):
    """Another running experiment on users blocks the demo start with a clear message."""
    make_experiment(key="other-user-test", unit_type="user")
    with pytest.raises(CommandError, match="already running on the unit space 'user'"):
        _routing("demo-seed", "--requests", "3", "--sync")
