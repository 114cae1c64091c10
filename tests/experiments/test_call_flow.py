"""experiments.call_flow: route -> run -> record, the one flow of every entry point."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from experiments.call_flow import (
    CallRecord,
    CallRequest,
    outcome_or_error,
    route_record_fields,
    routed_call_run,
)
from experiments.models import RoutedCall
from experiments.routes import ArmRoute
from experiments.services.routed_calls import routed_call_arecord, routed_call_write
from routing_platform.engine.errors import ProviderOverloadedError
from routing_platform.engine.outcome import RecordedError
from tests.experiments.factories import engine_result, make_experiment

REQUEST = CallRequest(
    kind="execute", source="api", unit_id="u-1", task_type="analysis", payload={"text": "hi"}
)
ROUTE = ArmRoute(
    experiment_key="exp",
    arm_key="b",
    strategy="original_council",
    router_params={"escalation_threshold": 0.6},
    experiment_id=1,
    arm_id=2,
    phase_id=3,
)


class Recorder:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    async def __call__(self, record: CallRecord) -> str:
        self.records.append(record)
        return "recorded"


async def test_runs_the_arm_and_records_the_outcome():
    seen = {}

    async def run(*, strategy, router_params):
        seen.update(strategy=strategy, router_params=router_params)
        return engine_result(strategy=strategy)

    record = Recorder()
    outcome, recorded = await routed_call_run(request=REQUEST, route=ROUTE, run=run, record=record)
    assert seen == {"strategy": "original_council", "router_params": {"escalation_threshold": 0.6}}
    assert recorded == "recorded" and outcome.model == "gpt-4o-mini"
    (written,) = record.records
    assert written.outcome is outcome and written.error is None
    fields = written.fields()
    assert (fields["experiment"], fields["arm"], fields["phase"]) == (1, 2, 3)
    assert fields["result"] is outcome.result and fields["request_payload"] == {"text": "hi"}


async def test_without_a_route_it_runs_smart_routing_and_records_no_arm():
    async def run(*, strategy, router_params):
        assert (strategy, router_params) == ("smart_routing", None)
        return engine_result()

    record = Recorder()
    await routed_call_run(request=REQUEST, route=None, run=run, record=record)
    fields = record.records[0].fields()
    assert "experiment" not in fields and "idempotency_key" not in fields


async def test_a_routing_error_is_recorded_typed_then_raised():
    error = ProviderOverloadedError("openai", 503, "busy", metadata={"cost": 0.002})

    async def run(**_):
        raise error

    record = Recorder()
    with pytest.raises(ProviderOverloadedError) as raised:
        await routed_call_run(request=REQUEST, route=ROUTE, run=run, record=record)
    assert raised.value is error
    (written,) = record.records
    assert written.outcome is None
    assert written.error == RecordedError(
        kind="ProviderOverloadedError",
        message="openai 503: busy",
        retryable=True,
        status=503,
        metadata={"cost": 0.002},
    )


async def test_other_exceptions_propagate_unrecorded():
    async def run(**_):
        raise RuntimeError("bug")

    record = Recorder()
    with pytest.raises(RuntimeError):
        await routed_call_run(request=REQUEST, route=None, run=run, record=record)
    assert record.records == []


def test_a_route_of_a_finished_experiment_runs_its_arm_uncounted():
    over = ArmRoute(
        experiment_key="e",
        arm_key="a",
        strategy="smart_routing",
        experiment_id=1,
        arm_id=2,
        phase_id=3,
        in_experiment=False,
    )
    assert route_record_fields(over) == {
        "experiment": None,
        "arm": None,
        "phase": None,
        "strategy": "smart_routing",
    }
    assert route_record_fields(None) == {}


def test_outcome_or_error_types_what_a_stream_ends_with():
    outcome, error = outcome_or_error(engine_result(), None)
    assert error is None and outcome.tier == "mini"
    outcome, error = outcome_or_error(None, ValueError("cut"))
    assert outcome is None and (error.kind, error.message) == ("ValueError", "cut")
    typed = RecordedError(kind="X", message="y")
    assert outcome_or_error(None, typed) == (None, typed)


@pytest.mark.django_db
def test_a_recorded_error_is_written_with_its_kind_and_partial_cost():
    call = routed_call_write(
        kind="execute",
        source="api",
        request_payload={"text": "hi"},
        error=RecordedError(
            kind="AllProvidersFailedError",
            message="all failed",
            metadata={"cost": 0.003, "models_tried": ["a", "b"]},
        ),
    )
    call.refresh_from_db()
    assert (call.status, call.error_type, call.error_message) == (
        "error",
        "AllProvidersFailedError",
        "all failed",
    )
    assert float(call.cost_usd) == pytest.approx(0.003) and call.models_tried == ["a", "b"]


@pytest.mark.django_db(transaction=True)
async def test_the_inline_record_step_pairs_a_shadow_twin(fake_redis):
    experiment = await sync_to_async(make_experiment)(shadow_percentage=100.0)
    arm = await experiment.arms.aget(key="smart_routing")
    route = ArmRoute(
        experiment_key=experiment.key,
        arm_key=arm.key,
        strategy=arm.strategy,
        experiment_id=experiment.pk,
        arm_id=arm.pk,
    )

    async def run(*, strategy, router_params):
        return engine_result(strategy=strategy)

    _, call = await routed_call_run(
        request=REQUEST, route=route, run=run, record=routed_call_arecord
    )
    stored = await RoutedCall.objects.aget(pk=call.pk)
    twin = await RoutedCall.objects.aget(paired_call_id=stored.pk)
    assert (stored.status, stored.arm_id) == ("success", arm.pk)
    assert twin.is_shadow and twin.arm_id != arm.pk and stored.paired_call_id == twin.pk
