"""A short database outage (a restart) is waited out with backoff spanning seconds: the
paid-for call is recorded once, and a failure that cannot be written is settled later."""

from __future__ import annotations

import json

import fakeredis
import pytest
from django.db import OperationalError

from experiments import db_retry, jobs, rollups, services
from experiments.models import CallRollup, RoutedCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def pauses(monkeypatch):
    """The pauses db_retry takes (not slept: recorded)."""
    taken: list[float] = []
    monkeypatch.setattr(db_retry.time, "sleep", taken.append)
    return taken


def test_backoff_spans_seconds_not_milliseconds():
    """The 4 immediate attempts of before were over in ~100 ms; the pauses now add up to
    longer than a database restart."""
    assert sum(db_retry.DB_RETRY_DELAYS_S) >= 10
    assert list(db_retry.DB_RETRY_DELAYS_S) == sorted(db_retry.DB_RETRY_DELAYS_S)


def test_a_database_restart_while_recording_is_waited_out(
    fake_redis, fake_engine, monkeypatch, pauses
):
    """The database refuses the record three times (restarting): the job waits with growing
    pauses, records the call once, and the engine (paid upstream) runs only once."""
    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    real_apply = rollups.rollup_apply
    failures = {"left": 3}

    def restarting(*, call, **prepared):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("the database system is starting up")
        real_apply(call=call, **prepared)

    monkeypatch.setattr(rollups, "rollup_apply", restarting)
    assert jobs.routed_call_execute(call.pk) == "success"
    assert pauses == list(db_retry.DB_RETRY_DELAYS_S[:3])
    assert len(fake_engine) == 1
    call.refresh_from_db()
    assert (call.status, call.attempts) == ("success", 1)
    assert CallRollup.objects.get().n == 1


def test_a_failure_callback_that_cannot_write_is_settled_later(fake_redis, monkeypatch, pauses):
    """Retries used up while the database stays down: the callback retries its own write,
    then leaves the failure in Redis; the periodic settle job records it once the database
    is back, so the row does not wait for a 10-minute reconcile."""
    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    call.refresh_from_db()
    real_fail = services.routed_call_fail

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "routed_call_fail", database_down)
    job = type("Job", (), {"retries_left": 0, "args": (call.pk,), "kwargs": {}, "id": "j1"})()
    connection = fakeredis.FakeRedis()
    jobs.routed_call_failed(job, connection, RuntimeError, RuntimeError("boom"), None)
    assert pauses == list(jobs.FAILURE_DB_RETRY_DELAYS_S)
    assert json.loads(connection.lindex(jobs.UNSETTLED_CALLS_KEY, 0))["call_id"] == call.pk
    assert RoutedCall.objects.get(pk=call.pk).status == "queued"

    monkeypatch.setattr(services, "routed_call_fail", real_fail)
    monkeypatch.setattr("django_rq.get_connection", lambda name: connection)
    assert jobs.routed_calls_settle() == 1
    call.refresh_from_db()
    assert (call.status, call.error_type) == ("error", "JobFailed")
    assert "boom" in call.error_message
    assert connection.llen(jobs.UNSETTLED_CALLS_KEY) == 0


def test_non_transient_errors_are_not_retried(pauses):
    """Bad data is not an outage: it propagates at once."""
    from django.db import DataError

    def refused():
        raise DataError("value out of range")

    with pytest.raises(DataError):
        db_retry.db_retry(refused)
    assert pauses == []


def test_a_real_postgresql_connection_killed_mid_record_is_reconnected(
    fake_redis, fake_engine, monkeypatch, pauses
):
    """PostgreSQL terminates the worker's connection (as a restart does) right before the
    call's record is written: the job reconnects and records the call once."""
    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (pg_terminate_backend); CI runs it in the postgres pass")
    call = services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})
    real_prepare = services.calls.execution.finish_prepare
    killed = []

    def prepare_then_lose_the_connection(call, **outcome):
        prepared = real_prepare(call, **outcome)
        if not killed:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            killed.append(pid)
        return prepared

    monkeypatch.setattr(
        services.calls.execution, "finish_prepare", prepare_then_lose_the_connection
    )
    assert jobs.routed_call_execute(call.pk) == "success"
    assert killed and pauses == [db_retry.DB_RETRY_DELAYS_S[0]]
    call.refresh_from_db()
    assert (call.status, call.attempts) == ("success", 1)
    assert CallRollup.objects.get().n == 1
