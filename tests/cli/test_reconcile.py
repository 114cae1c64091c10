"""`manage.py routing reconcile`: calls whose job is gone end as errors; Redis down changes nothing."""

from __future__ import annotations

import json
from io import StringIO

import django_rq
import fakeredis
import pytest
from django.core.management import CommandError, call_command

from experiments import services
from experiments.models import RoutedCall
from experiments.services.calls.reconciliation import MAX_RUNS

pytestmark = pytest.mark.django_db


def _queued_call(django_capture_on_commit_callbacks) -> RoutedCall:
    with django_capture_on_commit_callbacks(execute=True):
        return services.routed_call_enqueue(kind="execute", request_payload={"text": "x"})


def test_lost_job_is_run_again(fake_redis, django_capture_on_commit_callbacks):
    """A queued call whose job vanished is enqueued again; the summary counts it."""
    call = _queued_call(django_capture_on_commit_callbacks)
    fake_redis.flushall()
    out = StringIO()
    call_command("routing", "reconcile", "--older-than", "0", stdout=out)
    assert out.getvalue().startswith(
        "0 call(s) recorded as errors (0 whose job failed for good, 0 whose job was lost "
        "after its last run); 1 whose job was lost enqueued again;"
    )
    call.refresh_from_db()
    assert call.status == "queued" and django_rq.get_queue("routing").count == 1


def test_lost_job_of_a_call_out_of_runs_is_recorded_as_an_error(
    fake_redis, django_capture_on_commit_callbacks
):
    """A running call whose job vanished after its last allowed run ends as JobLost."""
    call = _queued_call(django_capture_on_commit_callbacks)
    RoutedCall.objects.filter(pk=call.pk).update(status="running", attempts=MAX_RUNS)
    fake_redis.flushall()
    out = StringIO()
    call_command("routing", "reconcile", "--older-than", "0", stdout=out)
    assert out.getvalue().startswith("1 call(s) recorded as errors")
    call.refresh_from_db()
    assert call.status == "error" and call.error_type == "JobLost"


def test_young_and_pending_calls_are_left_alone(fake_redis, django_capture_on_commit_callbacks):
    """The default age keeps a new call out; a call whose job is queued stays queued."""
    call = _queued_call(django_capture_on_commit_callbacks)
    out = StringIO()
    call_command("routing", "reconcile", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert {key: report[key] for key in ("failed", "lost", "requeued", "pending")} == {
        "failed": 0,
        "lost": 0,
        "requeued": 0,
        "pending": 0,
    }
    out = StringIO()
    call_command("routing", "reconcile", "--older-than", "0", "--json", stdout=out)
    assert json.loads(out.getvalue())["pending"] == 1
    call.refresh_from_db()
    assert call.status == "queued"


def test_redis_down_is_a_command_error_and_changes_nothing(
    fake_redis, django_capture_on_commit_callbacks, monkeypatch
):
    """Without Redis the jobs' state is unknown: a CommandError, and no call is touched."""
    call = _queued_call(django_capture_on_commit_callbacks)
    server = fakeredis.FakeServer()
    server.connected = False
    down = fakeredis.FakeRedis(server=server)
    monkeypatch.setattr(django_rq, "get_connection", lambda *args, **kwargs: down)
    with pytest.raises(CommandError, match="Redis is unreachable"):
        call_command("routing", "reconcile", "--older-than", "0")
    call.refresh_from_db()
    assert call.status == "queued"


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_negative_age_is_refused(value):
    with pytest.raises(CommandError, match="--older-than must be 0 seconds or more"):
        call_command("routing", "reconcile", "--older-than", value)
