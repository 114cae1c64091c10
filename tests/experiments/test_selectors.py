"""Selectors: what they return, and their query counts (pinned)."""

from __future__ import annotations

import pytest

from experiments import selectors, services
from tests.experiments.factories import engine_result, make_experiment

pytestmark = pytest.mark.django_db


def test_experiment_list_and_get_cost_two_queries(django_assert_num_queries):
    """Listing experiments with their arms is two queries however many there are."""
    for i in range(3):
        make_experiment(key=f"listed-{i}", unit_type=["user", "script", "team"][i])
    with django_assert_num_queries(2):
        listed = list(selectors.experiment_list())
        arms = [[arm.key for arm in experiment.arms.all()] for experiment in listed]
    assert [e.key for e in listed] == ["listed-2", "listed-1", "listed-0"]
    assert arms[0] == ["original_council", "smart_routing"]
    with django_assert_num_queries(2):
        found = selectors.experiment_get(key="listed-1")
        assert [arm.key for arm in found.arms.all()] == ["original_council", "smart_routing"]
    assert selectors.experiment_get(key="missing") is None


def test_experiment_list_filters_by_status():
    """status= narrows the list."""
    make_experiment(key="on")
    make_experiment(key="off", status="draft", unit_type="script")
    assert [e.key for e in selectors.experiment_list(status="draft")] == ["off"]


def test_routed_call_get_is_one_query(django_assert_num_queries):
    """A call with its experiment, arm and phase comes in one query; unknown ids give None."""
    experiment = make_experiment()
    call = services.routed_call_record(
        kind="execute",
        source="api",
        request_payload={"text": "x"},
        result=engine_result(),
        experiment=experiment,
        arm=experiment.arms.first(),
    )
    with django_assert_num_queries(1):
        found = selectors.routed_call_get(call_id=call.pk)
        assert found.experiment.key == experiment.key and found.arm.key == "original_council"
    assert selectors.routed_call_get(call_id=10**9) is None


def test_experiment_running_and_default():
    """The running experiment is preferred; with none running, the newest experiment."""
    assert selectors.experiment_default() is None
    draft = make_experiment(key="draft-one", status="draft")
    assert selectors.experiment_running() is None
    assert selectors.experiment_default() == draft
    running = make_experiment(key="running-one", unit_type="script")
    assert selectors.experiment_running() == running
    assert selectors.experiment_running(unit_type="user") is None
    assert selectors.experiment_default() == running


def test_arm_summary_counts_primary_calls_only(django_assert_num_queries):
    """Shadow twins and other experiments' calls do not count in an arm's summary."""
    experiment = make_experiment()
    smart = experiment.arms.get(key="smart_routing")
    for cost, score in ((0.002, 70.0), (0.004, 80.0)):
        services.routed_call_record(
            kind="evaluate",
            source="sdk",
            request_payload={"script": "s"},
            result=engine_result(kind="evaluate", cost=cost, final_score=score),
            experiment=experiment,
            arm=smart,
        )
    services.routed_call_record(
        kind="evaluate",
        source="shadow",
        request_payload={"script": "s"},
        result=engine_result(kind="evaluate", cost=1.0),
        experiment=experiment,
        arm=smart,
        is_shadow=True,
    )
    services.routed_call_record(
        kind="execute",
        source="sdk",
        request_payload={"text": "x"},
        result=None,
        error="boom",
        experiment=experiment,
        arm=smart,
    )
    with django_assert_num_queries(1):
        rows = {row["arm"]: row for row in selectors.experiment_arm_summary(experiment=experiment)}
    smart_row = rows["smart_routing"]
    assert smart_row["calls"] == 3 and smart_row["errors"] == 1
    assert smart_row["error_rate"] == pytest.approx(1 / 3)
    assert smart_row["cost_usd_mean"] == pytest.approx(0.006 / 3)
    assert smart_row["quality_mean"] == pytest.approx(75.0)
    assert rows["original_council"]["calls"] == 0 and rows["original_council"]["error_rate"] is None


def test_audit_log_list_is_newest_first():
    """The audit log of an experiment starts with its latest change."""
    experiment = make_experiment(traffic_percentage=1)
    services.experiment_ramp(experiment=experiment)
    actions = [entry.action for entry in selectors.audit_log_list(experiment=experiment)]
    assert actions == ["ramp", "start", "create"]
