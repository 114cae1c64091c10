"""The guide's A/B facade: ab_test_manager.enabled / assign / aroute / arecord / get_results.

Async tests use ``django_db(transaction=True)``: the facade reaches the ORM through
``sync_to_async`` (another thread), which cannot see rows inside a test transaction.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.models import RoutedCall
from experiments.routes import ArmRoute
from routing_platform.routing.ab_testing import ABTestManager, ab_test_manager
from tests.experiments.factories import make_experiment

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def thread_connections():
    """Close the database connection the facade opened in asgiref's worker thread, so the
    test database can be dropped at the end of the session (PostgreSQL refuses while a
    session is open)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def manager():
    """The process-wide manager, enabled for the test and restored afterwards."""
    previous = ab_test_manager.enabled
    ab_test_manager.enabled = True
    yield ab_test_manager
    ab_test_manager.enabled = previous


def test_manager_is_off_by_default():
    """A/B testing is opt-in, as in the guide (`ab_test_manager.enabled = True`)."""
    assert ABTestManager().enabled is False


@pytest.mark.django_db
def test_assign_is_sticky_and_names_the_arm():
    """assign() returns the same arm key for a unit every time, from the running experiment."""
    make_experiment(key="sticky")
    arms = {ab_test_manager.assign(f"user-{i}") for i in range(40)}
    assert arms == {"original_council", "smart_routing"}
    first = ab_test_manager.assign("user-3")
    assert all(ab_test_manager.assign("user-3", experiment="sticky") == first for _ in range(5))


@pytest.mark.django_db
def test_assign_without_an_experiment_or_outside_traffic_is_none():
    """No running experiment, or a unit outside the traffic share: no arm."""
    assert ab_test_manager.assign("user-1") is None
    make_experiment(key="tiny", traffic_percentage=0)
    assert ab_test_manager.assign("user-1", experiment="tiny") is None
    assert ab_test_manager.assign("", experiment="tiny") is None


@pytest.mark.django_db(transaction=True)
async def test_aroute_only_when_enabled(manager, thread_connections):
    """aroute gives the arm's route when enabled, and None when disabled or without a unit."""
    from asgiref.sync import sync_to_async

    await sync_to_async(make_experiment)(key="routed")
    route = await manager.aroute(unit_id="user-5", experiment="routed", kind="execute")
    assert isinstance(route, ArmRoute)
    assert route.experiment_key == "routed" and route.strategy in {
        "original_council",
        "smart_routing",
    }
    assert await manager.aroute(unit_id="", experiment="routed", kind="execute") is None
    manager.enabled = False
    assert await manager.aroute(unit_id="user-5", experiment="routed", kind="execute") is None


@pytest.mark.django_db(transaction=True)
async def test_smart_executor_runs_and_records_the_arm_of_the_unit(
    manager, fake_redis, thread_connections
):
    """With A/B on, smart_executor calls carrying a unit_id run their arm's strategy and
    are recorded under that arm."""
    from asgiref.sync import sync_to_async

    from routing_platform.routing.integration import smart_executor

    experiment = await sync_to_async(make_experiment)(key="exec-ab")
    seen = {}
    for i in range(12):
        unit = f"user-{i}"
        result = await smart_executor.execute(
            text="Classify the sentiment: great service",
            task_type="classification",
            unit_id=unit,
        )
        seen[unit] = result["_routing_metadata"]["strategy"]
    calls = await sync_to_async(list)(
        RoutedCall.objects.filter(experiment=experiment).select_related("arm")
    )
    assert len(calls) == 12
    for call in calls:
        assert call.status == "success" and call.source == "sdk"
        assert call.strategy == call.arm.strategy == seen[call.unit_id]
    assert {call.arm.key for call in calls} == {"original_council", "smart_routing"}


@pytest.mark.django_db(transaction=True)
async def test_smart_council_records_without_an_arm_when_disabled(fake_redis, thread_connections):
    """With A/B off, the call runs smart routing and is recorded outside any experiment."""
    from asgiref.sync import sync_to_async

    from routing_platform.routing.integration import smart_council

    await sync_to_async(make_experiment)(key="ignored")
    assert ab_test_manager.enabled is False
    result = await smart_council.evaluate_script(
        "A hook about budget travel", "travel", unit_id="user-1"
    )
    assert "final_score" in result
    call = await sync_to_async(RoutedCall.objects.get)()
    assert call.experiment_id is None and call.kind == "evaluate"
    assert call.final_score == result["final_score"]


@pytest.mark.django_db(transaction=True)
async def test_sdk_calls_get_shadow_twins_on_the_queue(manager, fake_redis, thread_connections):
    """With shadow at 100%, each recorded SDK call queues the other arm on the same input."""
    import django_rq
    from asgiref.sync import sync_to_async

    from routing_platform.routing.integration import smart_council

    await sync_to_async(make_experiment)(key="shadowed", shadow_percentage=100)
    await smart_council.evaluate_script("Same script", "food", unit_id="user-2")
    primary = await sync_to_async(RoutedCall.objects.select_related("paired_call").get)(
        is_shadow=False
    )
    shadow = primary.paired_call
    assert shadow.is_shadow and shadow.status == "queued"
    assert shadow.request_payload["script"] == "Same script"
    assert shadow.strategy != primary.strategy
    assert await sync_to_async(lambda: django_rq.get_queue("shadow").job_ids)() == [shadow.job_id]


@pytest.mark.django_db
def test_get_results_is_the_report_with_a_winner_entry():
    """get_results() returns the statistics report plus results['winner']['strategy']."""
    make_experiment(key="reported")
    results = ab_test_manager.get_results()
    assert "decision" in results and "schema_version" in results
    assert set(results["winner"]) == {"arm", "strategy"}
    assert results["winner"]["strategy"] in (None, "original_council", "smart_routing")


@pytest.mark.django_db
def test_get_results_falls_back_to_counts_and_means(monkeypatch):
    """Without the statistics module, get_results() gives per-arm counts and means."""
    from experiments import services
    from tests.experiments.factories import engine_result

    experiment = make_experiment(key="fallback")
    arm = experiment.arms.get(key="smart_routing")
    for cost in (0.001, 0.003):
        services.routed_call_record(
            kind="execute",
            source="sdk",
            request_payload={"text": "x"},
            result=engine_result(cost=cost),
            experiment=experiment,
            arm=arm,
        )
    monkeypatch.setitem(sys.modules, "experiments.reports", None)
    results = ab_test_manager.get_results("fallback")
    assert results["winner"] == {"arm": None, "strategy": None}
    by_arm = {row["arm"]: row for row in results["arms"]}
    assert by_arm["smart_routing"]["calls"] == 2
    assert by_arm["smart_routing"]["cost_usd_mean"] == pytest.approx(0.002)
    assert by_arm["original_council"]["calls"] == 0


@pytest.mark.django_db
def test_get_results_without_any_experiment_says_what_to_do():
    """No experiment at all: an empty result that says how to create one."""
    results = ab_test_manager.get_results()
    assert results["experiment"] is None
    assert "demo-seed" in results["message"]
    assert results["winner"]["strategy"] is None


def test_facade_is_a_no_op_without_django_settings():
    """Imported and used without DJANGO_SETTINGS_MODULE, the facade records nothing and
    raises nothing."""
    code = (
        "import asyncio\n"
        "from routing_platform.routing.ab_testing import ab_test_manager as m\n"
        "m.enabled = True\n"
        "print(asyncio.run(m.arecord(kind='execute', route=None, unit_id='u', task_type='x',"
        " request_payload={}, result={}, error=None)))\n"
        "print(asyncio.run(m.aroute(unit_id='u', experiment=None, kind='execute')))\n"
        "print(m.assign('u'))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None", "None"]
