"""Routed calls: record once, enqueue after commit, execute as a job, shadow pairs, failures.

Queues are fakeredis here (the ``fake_redis`` fixture); the real Redis and real
``rqworker`` processes are in ``test_rq_integration.py``.
"""

from __future__ import annotations

import random
import time
import uuid
from decimal import Decimal

import django_rq
import pytest
from django.core.exceptions import ValidationError
from rq import SimpleWorker
from rq.job import Job

from experiments import jobs, selectors, services
from experiments.models import CallRollup, RoutedCall
from experiments.services.calls import dispatch, reconciliation
from routing_platform.engine.errors import AllProvidersFailedError, ProviderError
from tests.experiments.factories import engine_result, make_experiment

pytestmark = pytest.mark.django_db


def _record(**overrides):
    fields = {
        "kind": "execute",
        "source": "sdk",
        "unit_id": "u-1",
        "task_type": "analysis",
        "request_payload": {"text": "Summarise this"},
        "result": engine_result(),
    }
    fields.update(overrides)
    return services.routed_call_record(**fields)


def test_record_success_keeps_the_routing_metadata():
    """A result's metadata lands in typed columns; money is Decimal USD; it is rolled up."""
    call = _record(result=engine_result(kind="evaluate", cost=0.0004, final_score=81.5))
    call.refresh_from_db()
    assert call.status == RoutedCall.Status.SUCCESS
    assert call.cost_usd == Decimal("0.0004")
    assert call.baseline_cost_usd == Decimal("0.012")
    assert (call.complexity, call.tier, call.model, call.provider) == (
        "simple",
        "mini",
        "gpt-4o-mini",
        "simulated",
    )
    assert call.models_tried == ["gpt-4o-mini"]
    assert call.confidence == pytest.approx(0.82)
    assert (call.final_score, call.verdict) == (81.5, "approve")
    assert call.latency_ms == 140.0 and call.completed_at is not None
    rollup = CallRollup.objects.get()
    assert rollup.n == 1 and rollup.status == "success" and rollup.quality_n == 1


def test_record_error_keeps_the_reason_and_partial_metadata():
    """A routing error is an error row with its type, message and the models it tried."""
    error = AllProvidersFailedError(
        [ProviderError("openai", 529, "overloaded")],
        metadata={"models_tried": ["gpt-4o-mini", "gpt-4o"], "tier": "standard"},
    )
    call = _record(result=None, error=error)
    call.refresh_from_db()
    assert call.status == RoutedCall.Status.ERROR
    assert call.error_type == "AllProvidersFailedError"
    assert "openai 529: overloaded" in call.error_message
    assert call.models_tried == ["gpt-4o-mini", "gpt-4o"]
    assert CallRollup.objects.get().status == "error"


def test_error_messages_never_keep_secrets(settings):
    """A provider key inside an error message is masked before it is stored."""
    settings.OPENAI_API_KEY = "sk-test-secret-0123456789abcdef"
    call = _record(
        result=None, error=RuntimeError("auth failed for sk-test-secret-0123456789abcdef")
    )
    assert "sk-test-secret" not in call.error_message
    assert "[REDACTED]" in call.error_message


def test_recording_the_same_idempotency_key_twice_records_once():
    """The second record of a key returns the first row; the rollup counts one call."""
    first = _record(idempotency_key="same-key")
    second = _record(idempotency_key="same-key", result=engine_result(cost=9.0))
    assert first.pk == second.pk
    assert RoutedCall.objects.count() == 1
    assert second.cost_usd == Decimal("0.0004")
    assert CallRollup.objects.get().n == 1


def test_record_rejects_an_unknown_kind():
    """A kind that is not execute/evaluate/chat is refused with the allowed values."""
    with pytest.raises(ValidationError, match="use one of execute, evaluate, chat"):
        _record(kind="stream")


def test_enqueue_writes_a_queued_row_and_enqueues_after_commit(
    fake_redis, django_capture_on_commit_callbacks
):
    """The job is enqueued only on commit, on the routing queue, with retries and callback."""
    import django_rq

    experiment = make_experiment()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call = services.routed_call_enqueue(
            kind="execute",
            request_payload={"text": "hello"},
            unit_id="user-1",
            experiment_key=experiment.key,
        )
        assert django_rq.get_queue("routing").count == 0  # nothing before commit
    assert call.status == RoutedCall.Status.QUEUED
    assert call.arm_id is not None and call.phase_id is not None
    assert call.request_payload["_route"]["strategy"] == call.strategy
    for callback in callbacks:
        callback()
    queue = django_rq.get_queue("routing")
    assert queue.job_ids == [call.job_id]
    job = queue.fetch_job(call.job_id)
    assert job.args == (call.pk,)
    assert job.retries_left == 3
    assert job.failure_callback is jobs.routed_call_failed


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("execute", {}, "needs text or messages"),
        ("evaluate", {"text": "x"}, "needs script"),
        ("chat", {"messages": []}, "needs messages"),
        ("teleport", {"text": "x"}, "Unknown call kind"),
    ],
)
def test_enqueue_refuses_bad_requests(fake_redis, kind, payload, message):
    """A request the job could not run is refused before anything is written."""
    with pytest.raises(ValidationError, match=message):
        services.routed_call_enqueue(kind=kind, request_payload=payload)
    assert not RoutedCall.objects.exists()


def test_enqueue_refuses_an_unknown_experiment(fake_redis):
    """An experiment key that does not exist is named in the error."""
    with pytest.raises(ValidationError, match="No experiment with key 'ghost'"):
        services.routed_call_enqueue(
            kind="execute", request_payload={"text": "x"}, experiment_key="ghost"
        )


def test_job_runs_the_arm_strategy_and_records_once(
    fake_redis, fake_engine, django_capture_on_commit_callbacks
):
    """The job runs its arm's strategy and params; a second run of it records nothing new."""
    experiment = make_experiment()
    with django_capture_on_commit_callbacks(execute=True):
        call = services.routed_call_enqueue(
            kind="evaluate",
            request_payload={"script": "A hook about coffee", "niche": "food"},
            unit_id="user-9",
            experiment=experiment,
        )
    assert jobs.routed_call_execute(call.pk) == "success"
    assert jobs.routed_call_execute(call.pk) == "success"
    call.refresh_from_db()
    assert len(fake_engine) == 1
    sent = fake_engine[0]
    assert sent["fn"] == "evaluate" and sent["script"] == "A hook about coffee"
    assert sent["strategy"] == call.arm.strategy
    expected_params = {"escalation_threshold": 0.6} if call.arm.key == "smart_routing" else None
    assert sent["router_params"] == expected_params
    assert call.status == "success" and call.attempts == 1
    assert call.experiment_id == experiment.pk and call.final_score == 78.0
    assert CallRollup.objects.get().n == 1


def test_job_records_a_routing_error_with_its_reason(fake_redis, monkeypatch):
    """When the engine gives up (all providers failed), the call is an error row, no raise."""
    from routing_platform import runtime

    async def failing(**kwargs):
        raise AllProvidersFailedError([ProviderError("anthropic", 529, "overloaded")])

    monkeypatch.setattr(runtime, "run_execute", failing)
    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    assert jobs.routed_call_execute(call.pk) == "error"
    call.refresh_from_db()
    assert call.error_type == "AllProvidersFailedError"
    assert "anthropic 529" in call.error_message


def test_a_crashing_job_raises_for_rq_and_is_recorded_when_retries_run_out(fake_redis, monkeypatch):
    """An unexpected crash propagates (RQ retries); the failure callback records the error
    only once no retry is left."""
    from routing_platform import runtime

    async def crash(**kwargs):
        raise ZeroDivisionError("bug in a plugin")

    monkeypatch.setattr(runtime, "run_execute", crash)
    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    with pytest.raises(ZeroDivisionError):
        jobs.routed_call_execute(call.pk)
    call.refresh_from_db()
    assert call.status == "running" and call.attempts == 1

    class FakeJob:
        id = call.job_id
        args = (call.pk,)
        kwargs = {}
        retries_left = 2

    jobs.routed_call_failed(FakeJob, None, ZeroDivisionError, ZeroDivisionError("bug"), None)
    call.refresh_from_db()
    assert call.status == "running"  # RQ will retry: nothing recorded yet
    FakeJob.retries_left = 0
    jobs.routed_call_failed(FakeJob, None, ZeroDivisionError, ZeroDivisionError("bug"), None)
    call.refresh_from_db()
    assert call.status == "error" and call.error_type == "JobFailed"
    assert "ZeroDivisionError: bug" in call.error_message
    assert CallRollup.objects.get().n == 1


def test_failure_callback_of_an_abandoned_job_explains_the_worker_died(fake_redis):
    """A job abandoned by a killed worker (no retry left) is recorded with that reason."""
    from rq.exceptions import AbandonedJobError

    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})

    class FakeJob:
        id = call.job_id
        args = (call.pk,)
        kwargs = {}
        retries_left = None

    jobs.routed_call_failed(FakeJob, None, AbandonedJobError, AbandonedJobError(), None)
    call.refresh_from_db()
    assert call.status == "error"
    assert "AbandonedJobError: the worker died while running it" in call.error_message


def test_redis_down_at_enqueue_records_an_error_and_says_so(
    monkeypatch, django_capture_on_commit_callbacks
):
    """If Redis refuses the job, the call becomes an error row and the caller gets a clear
    QueueUnavailableError (the API turns it into a 503)."""
    import redis

    def refuse(**kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(dispatch, "enqueue_routed_call", refuse)
    with (
        pytest.raises(services.QueueUnavailableError, match="Check that Redis is running"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    call = RoutedCall.objects.get()
    assert call.status == "error" and call.error_type == "QueueUnavailable"
    assert "Connection refused" in call.error_message


def test_shadow_mode_runs_the_other_arm_as_a_pair(
    fake_redis, fake_engine, django_capture_on_commit_callbacks
):
    """With shadow at 100%, each assigned call gets a paired twin on the shadow queue that
    runs the other arm on the same input."""
    import django_rq

    experiment = make_experiment(shadow_percentage=100)
    with django_capture_on_commit_callbacks(execute=True):
        primary = services.routed_call_enqueue(
            kind="evaluate",
            request_payload={"script": "Same input"},
            unit_id="u-5",
            experiment=experiment,
        )
    primary.refresh_from_db()
    shadow = primary.paired_call
    assert shadow is not None and shadow.is_shadow and shadow.source == "shadow"
    assert shadow.paired_call_id == primary.pk
    assert shadow.arm_id != primary.arm_id
    assert shadow.strategy != primary.strategy
    assert shadow.request_payload["script"] == "Same input"
    assert django_rq.get_queue("shadow").job_ids == [shadow.job_id]
    assert django_rq.get_queue("routing").job_ids == [primary.job_id]
    jobs.routed_call_execute(primary.pk)
    jobs.routed_call_execute(shadow.pk)
    assert {call["strategy"] for call in fake_engine} == {"smart_routing", "original_council"}
    assert list(selectors.shadow_pairs(experiment=experiment)) == [primary]


def test_shadow_share_is_respected(fake_redis, monkeypatch):
    """A shadow share of 0.2 pairs about a fifth of 300 calls; 0 pairs none.

    The coin is a hash of each call's random idempotency key, so ``uuid.uuid4`` draws from
    a seeded generator for this test: the count is the same on every run (a free draw of
    Binomial(300, 0.2) leaves these bounds about once in 4,000 runs).
    """
    keys = random.Random(20261127)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=keys.getrandbits(128), version=4))
    experiment = make_experiment()
    for i in range(300):
        services.routed_call_enqueue(
            kind="execute",
            request_payload={"text": f"q{i}"},
            unit_id=f"u{i}",
            experiment=experiment,
            shadow_share=0.2,
        )
    shadows = RoutedCall.objects.filter(is_shadow=True).count()
    assert 35 <= shadows <= 85, shadows
    services.routed_call_enqueue(
        kind="execute",
        request_payload={"text": "q"},
        unit_id="x",
        experiment=experiment,
        shadow_share=0,
    )
    assert RoutedCall.objects.filter(is_shadow=True).count() == shadows


def test_calls_after_rollback_run_the_control_but_are_not_counted(fake_redis, fake_engine):
    """After a rollback a call runs the original strategy and carries no experiment."""
    experiment = make_experiment()
    services.experiment_rollback(experiment=experiment)
    call = services.routed_call_enqueue(
        kind="execute", request_payload={"text": "x"}, unit_id="u", experiment_key=experiment.key
    )
    assert call.experiment_id is None and call.strategy == "original_council"
    jobs.routed_call_execute(call.pk)
    assert fake_engine[0]["strategy"] == "original_council"


def _run_queued_jobs() -> None:
    queue = django_rq.get_queue("routing")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_reconcile_runs_again_a_call_whose_job_is_gone(
    fake_redis, fake_engine, django_capture_on_commit_callbacks
):
    """A queued call whose job no longer exists (Redis restarted without persistence) is
    enqueued again under a new job, and a worker records it, once."""
    with django_capture_on_commit_callbacks(execute=True):
        call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    fake_redis.flushall()
    assert services.routed_calls_reconcile(older_than_s=3600) == {
        "failed": 0,
        "lost": 0,
        "requeued": 0,
        "pending": 0,
    }
    assert services.routed_calls_reconcile(older_than_s=-1)["requeued"] == 1
    old_job_id = call.job_id
    call.refresh_from_db()
    assert call.status == "queued" and call.job_id.startswith(old_job_id + "-")
    assert services.routed_calls_reconcile(older_than_s=-1)["pending"] == 1
    _run_queued_jobs()
    call.refresh_from_db()
    assert call.status == "success" and len(fake_engine) == 1
    assert services.routed_calls_reconcile(older_than_s=-1) == dict.fromkeys(
        ("failed", "lost", "requeued", "pending"), 0
    )


def test_reconcile_runs_again_a_queued_job_that_no_queue_holds(
    fake_redis, fake_engine, django_capture_on_commit_callbacks
):
    """The chaos case (Redis stopped 10 s, with persistence): a worker popped the job's id
    from the queue, then lost Redis before reading the job, so the job stays "queued" in
    no queue and no worker will take it. Reconcile runs it again; one reconcile and a
    worker leave no row open."""
    with django_capture_on_commit_callbacks(execute=True):
        calls = [
            services.routed_call_enqueue(kind="execute", request_payload={"text": f"q{i}"})
            for i in range(2)
        ]
    connection = django_rq.get_connection("routing")
    assert connection.lpop(django_rq.get_queue("routing").key).decode() == calls[0].job_id
    assert Job.fetch(calls[0].job_id, connection=connection).get_status() == "queued"
    assert services.routed_calls_reconcile(older_than_s=-1) == {
        "failed": 0,
        "lost": 0,
        "requeued": 1,
        "pending": 1,
    }
    _run_queued_jobs()
    assert sorted(RoutedCall.objects.values_list("status", flat=True)) == ["success"] * 2
    assert len(fake_engine) == 2


def test_reconcile_records_a_lost_call_that_ran_out_of_runs(
    fake_redis, django_capture_on_commit_callbacks
):
    """A lost job whose call already ran as often as RQ's retries allow is not run again:
    the call ends as an error (JobLost) with the reason."""
    with django_capture_on_commit_callbacks(execute=True):
        call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    RoutedCall.objects.filter(pk=call.pk).update(status="running", attempts=reconciliation.MAX_RUNS)
    fake_redis.flushall()
    assert services.routed_calls_reconcile(older_than_s=-1)["lost"] == 1
    call.refresh_from_db()
    assert call.status == "error" and call.error_type == "JobLost"
    assert f"it already ran {reconciliation.MAX_RUNS} time(s)" in call.error_message


def test_reconcile_leaves_pending_jobs_alone(fake_redis, django_capture_on_commit_callbacks):
    """A call whose job is still queued is left to its worker."""
    with django_capture_on_commit_callbacks(execute=True):
        call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    assert services.routed_calls_reconcile(older_than_s=-1)["pending"] == 1
    call.refresh_from_db()
    assert call.status == "queued"


def _started_by(call: RoutedCall, worker_name: str):
    """Mark the call's job "started" by ``worker_name``, which beats now; the connection."""
    connection = django_rq.get_connection("routing")
    job = Job.fetch(call.job_id, connection=connection)
    job.set_status("started")
    job.worker_name = worker_name
    job.save()
    connection.zadd(jobs.WORKERS_ALIVE_KEY, {worker_name: time.time()})
    return connection


def test_reconcile_settles_a_started_job_whose_worker_stopped_beating(
    fake_redis, django_capture_on_commit_callbacks
):
    """A job left "started" by a SIGKILLed worker is settled once the worker's liveness
    beat is stale (here as JobLost: the call already ran out of runs); while the worker
    still beats, the call is left to it."""
    with django_capture_on_commit_callbacks(execute=True):
        call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    RoutedCall.objects.filter(pk=call.pk).update(status="running", attempts=reconciliation.MAX_RUNS)
    connection = _started_by(call, "w-killed")
    assert services.routed_calls_reconcile(older_than_s=-1)["pending"] == 1
    connection.zadd(jobs.WORKERS_ALIVE_KEY, {"w-killed": time.time() - 10 * jobs.WORKER_ALIVE_S})
    assert services.routed_calls_reconcile(older_than_s=-1)["lost"] == 1
    call.refresh_from_db()
    assert call.status == "error" and call.error_type == "JobLost"
    assert "w-killed" in call.error_message


def test_reconcile_runs_again_a_job_its_live_worker_left_behind(
    fake_redis, django_capture_on_commit_callbacks
):
    """A job "started" by a worker that still beats is pending while the worker runs it;
    once that worker runs another job (or idles), the job was left behind: run it again."""
    with django_capture_on_commit_callbacks(execute=True):
        call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    queue = django_rq.get_queue("routing")
    connection = _started_by(call, "w-alive")
    assert connection.lpop(queue.key).decode() == call.job_id  # the worker took it
    worker = SimpleWorker([queue], name="w-alive", connection=connection)
    worker.register_birth()
    worker.set_state("busy")
    worker.set_current_job_id(call.job_id)
    assert services.routed_calls_reconcile(older_than_s=-1)["pending"] == 1
    worker.set_current_job_id("call-another")
    assert services.routed_calls_reconcile(older_than_s=-1)["requeued"] == 1
    assert queue.get_job_ids() == [RoutedCall.objects.get().job_id]


def test_fakeredis_worker_runs_every_enqueued_call_once(
    fake_redis, fake_engine, django_capture_on_commit_callbacks
):
    """An in-process RQ worker on fakeredis drains the queue; each call is recorded once,
    also after its jobs are enqueued a second time."""
    import django_rq
    from rq import SimpleWorker

    experiment = make_experiment()
    with django_capture_on_commit_callbacks(execute=True):
        calls = [
            services.routed_call_enqueue(
                kind="execute",
                request_payload={"text": f"q{i}"},
                unit_id=f"u{i}",
                experiment=experiment,
            )
            for i in range(6)
        ]
    for call in calls[:3]:  # the same jobs delivered twice
        dispatch.enqueue_routed_call(
            call_id=call.pk, job_id=call.job_id + "-dup", queue_name="routing"
        )
    queue = django_rq.get_queue("routing")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    statuses = list(RoutedCall.objects.values_list("status", flat=True))
    assert statuses == ["success"] * 6
    assert len(fake_engine) == 6
    assert sum(CallRollup.objects.values_list("n", flat=True)) == 6
