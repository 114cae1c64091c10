"""RQ jobs: load by id and call the service; a failed record is retried, never doubled."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from django.db import OperationalError
from django.utils import timezone

from experiments import jobs, services
from experiments.models import CallRollup, RoutedCall
from experiments.services.calls import dispatch, reconciliation
from experiments.services.calls.reconciliation import JobState
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db


def test_job_for_a_deleted_call_does_nothing(fake_engine):
    """A job whose row is gone returns 'missing' without calling the engine."""
    assert jobs.routed_call_execute(123456) == "missing"
    assert fake_engine == []


def test_a_database_failure_while_recording_leaves_no_half_record(
    fake_redis, fake_engine, monkeypatch
):
    """If the database fails inside the recording transaction (locked, gone away), nothing
    of the record is kept: the job raises for RQ to retry, and the retry records once."""
    from experiments import rollups

    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    real_apply = rollups.rollup_apply
    failures = {"left": 1}

    def flaky_apply(*, call, **prepared):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("database is locked")
        real_apply(call=call, **prepared)

    monkeypatch.setattr(rollups, "rollup_apply", flaky_apply)
    with pytest.raises(OperationalError):
        jobs.routed_call_execute(call.pk)
    call.refresh_from_db()
    assert call.status == "running" and call.completed_at is None
    assert not CallRollup.objects.exists()
    assert jobs.routed_call_execute(call.pk) == "success"  # RQ's retry
    assert jobs.routed_call_execute(call.pk) == "success"  # and a duplicate delivery
    call.refresh_from_db()
    assert call.attempts == 2
    assert CallRollup.objects.get().n == 1
    assert RoutedCall.objects.count() == 1


def test_enqueue_routed_call_sets_retry_timeout_and_callback(fake_redis):
    """Jobs carry 3 retries, a timeout and the failure callback that records errors."""
    job = dispatch.enqueue_routed_call(call_id=7, job_id="call-test", queue_name="shadow")
    assert job.origin == "shadow" and job.id == "call-test"
    assert job.retries_left == 3 and job.timeout == 300
    assert job.failure_callback is jobs.routed_call_failed
    # The services enqueue the job by its dotted path: it must name the job itself.
    assert job.func_name == jobs.ROUTED_CALL_JOB and job.func is jobs.routed_call_execute


def test_job_state_reports_missing_failed_and_pending(fake_redis):
    """job_state tells the reconciler whether a job is lost, failed for good, or pending."""
    assert reconciliation.job_state(job_id="nope", queue_name="routing").state == "lost"
    job = dispatch.enqueue_routed_call(call_id=7, job_id="call-pending", queue_name="routing")
    assert reconciliation.job_state(job_id=job.id, queue_name="routing") == JobState("pending")
    job.set_status("failed")
    assert reconciliation.job_state(job_id=job.id, queue_name="routing").state == "failed"


def test_routing_worker_is_the_configured_worker_class(settings):
    """rqworker uses RoutingWorker (in-process jobs) by default."""
    from django_rq.workers import get_worker_class

    assert get_worker_class() is jobs.RoutingWorker


@pytest.mark.django_db(transaction=True)
def test_routing_worker_runs_jobs_in_process(fake_redis, fake_engine):
    """RoutingWorker drains the queue without forking and records each call.

    (transaction=True: the worker checks database connections around each job as Django
    does around a request, which closes a connection held inside a test transaction.)"""
    import django_rq

    ids = [
        services.routed_call_enqueue(kind="execute", request_payload={"text": f"q{i}"}).pk
        for i in range(3)
    ]
    queue = django_rq.get_queue("routing")
    jobs.RoutingWorker([queue], connection=queue.connection).work(burst=True)
    assert set(RoutedCall.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "success"
    }


def _fields(instance):
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def test_routed_call_for_job_reads_what_the_orm_reads(fake_redis):
    """The job's one-statement read returns the call, its experiment and its arm with the
    same values as the ORM's select_related query; None for a missing row."""
    experiment = make_experiment(shadow_percentage=0.0)
    in_experiment = services.routed_call_enqueue(
        kind="execute",
        request_payload={"text": "q", "messages": [{"role": "user", "content": "é"}]},
        unit_id="u-1",
        experiment_key=experiment.key,
    )
    plain = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    for call_id in (in_experiment.pk, plain.pk):
        expected = RoutedCall.objects.select_related("experiment", "arm").filter(pk=call_id).first()
        loaded = services.routed_call_for_job(call_id=call_id)
        assert _fields(loaded) == _fields(expected)
        assert loaded._state.adding is False
        for relation in ("experiment", "arm"):
            related, expected_related = getattr(loaded, relation), getattr(expected, relation)
            if expected_related is None:
                assert related is None
            else:
                assert _fields(related) == _fields(expected_related)
    assert in_experiment.experiment_id is not None and plain.experiment_id is None
    assert services.routed_call_for_job(call_id=987654) is None


@pytest.mark.django_db(transaction=True)
def test_routing_worker_keeps_rqs_bookkeeping_for_routed_calls(fake_redis, fake_engine):
    """With the trimmed success path, RQ still sees each routed-call job as finished: in
    the finished registry, out of the started registry, its result stored, the worker's
    success count up."""
    import django_rq
    from rq.job import Job, JobStatus

    calls = [
        services.routed_call_enqueue(kind="execute", request_payload={"text": f"b{i}"})
        for i in range(2)
    ]
    queue = django_rq.get_queue("routing")
    worker = jobs.RoutingWorker([queue], connection=queue.connection)
    worker.work(burst=True)
    for call in calls:
        job = Job.fetch(call.job_id, connection=queue.connection)
        assert job.func_name == jobs.ROUTED_CALL_JOB
        assert job.get_status(refresh=True) == JobStatus.FINISHED
        assert job.return_value() == "success"
        assert call.job_id in queue.finished_job_registry.get_job_ids()
    assert queue.started_job_registry.get_job_ids() == []
    assert int(queue.connection.hget(worker.key, "successful_job_count")) == 2


def test_periodic_reconcile_runs_again_old_calls_whose_job_is_lost(
    fake_redis, django_capture_on_commit_callbacks, settings
):
    """Every worker's timer enqueues the reconcile job; it settles calls older than
    RECONCILE_AFTER_S whose job is gone and leaves younger ones to their workers."""
    assert "experiments.jobs.routed_calls_reconcile" in settings.RQ_PERIODIC_JOBS
    with django_capture_on_commit_callbacks(execute=True):
        old, young = (
            services.routed_call_enqueue(kind="execute", request_payload={"text": text})
            for text in ("old", "young")
        )
    RoutedCall.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(seconds=jobs.RECONCILE_AFTER_S + 1)
    )
    fake_redis.flushall()
    assert jobs.routed_calls_reconcile() == {"failed": 0, "lost": 0, "requeued": 1, "pending": 0}
    queued = django_rq.get_queue("routing").get_job_ids()
    assert queued == [RoutedCall.objects.get(pk=old.pk).job_id]
    assert RoutedCall.objects.get(pk=young.pk).job_id not in queued
