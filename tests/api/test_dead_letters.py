"""The poison pill: a call record that cannot be written moves to the dead letters, the
drain goes on with the others, and the dead letter is visible (/health, `routing status`,
`routing dead-letters`) and can be replayed or dropped."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import OperationalError

from api import dead_letters, jobs, redis_client
from api.health import health_report
from api.recording import FAILED_RECORDS_KEY, RECORDS_KEY, record_call_deferred, records_backlog
from experiments import db_retry
from experiments.models import RoutedCall
from tests.api.test_jobs import chat_fields

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

#: Beyond any integer column: refused by the service (or the database) on every backend.
UNWRITABLE = {"_routing_metadata": {"input_tokens": 10**30}, "response": "x"}


@pytest.fixture
def one_redis(fake_redis, monkeypatch):
    """django-rq (CLI, health) and the API's sync client on one fakeredis."""
    monkeypatch.setattr(redis_client, "get_sync_client", lambda: fake_redis)
    return fake_redis


def _push(connection, key: str, **overrides) -> None:
    """A record payload as record_call_deferred leaves it (the oldest when pushed first)."""
    connection.lpush(RECORDS_KEY, json.dumps({**chat_fields(key), **overrides, "_queued_at": 1.0}))


def test_poison_pill_goes_to_the_dead_letters_and_the_rest_is_recorded(one_redis):
    """The oldest record cannot be written; the three behind it are, and it is kept aside
    with the reason."""
    _push(one_redis, "openai:poison", result=UNWRITABLE)
    for index in range(3):
        _push(one_redis, f"openai:good-{index}")
    assert jobs.call_records_drain() == 3
    assert one_redis.llen(RECORDS_KEY) == 0
    assert RoutedCall.objects.filter(idempotency_key__startswith="openai:good-").count() == 3
    assert not RoutedCall.objects.filter(idempotency_key="openai:poison").exists()
    [letter] = dead_letters.dead_letters_list(one_redis)
    assert "openai:poison" in letter.payload
    assert letter.error.split(":")[0] in {"ValidationError", "DataError", "OverflowError"}
    backlog = records_backlog(one_redis)
    assert (backlog.pending, backlog.dead_letters) == (0, 1)


def test_a_database_outage_keeps_the_records_for_the_next_drain(one_redis, monkeypatch):
    """Database down (not the record's fault): nothing moves to the dead letters, the drain
    fails (RQ retries it) and every record stays in Redis."""
    monkeypatch.setattr(db_retry, "DB_RETRY_DELAYS_S", (0.0,))

    def database_down(raw):
        raise OperationalError("connection refused")

    monkeypatch.setattr(jobs, "record_payload", database_down)
    monkeypatch.setattr(jobs, "database_reachable", lambda: False)
    _push(one_redis, "openai:waits")
    with pytest.raises(jobs.DatabaseDownError):
        jobs.call_records_drain()
    assert one_redis.llen(RECORDS_KEY) == 1
    assert one_redis.llen(FAILED_RECORDS_KEY) == 0


def test_dead_letters_cli_lists_replays_and_drops(one_redis):
    """`routing dead-letters` lists; --replay writes the fixed ones once and keeps the
    others with one more attempt; --drop deletes."""
    fixable = json.dumps(chat_fields("openai:fixed"))
    one_redis.lpush(FAILED_RECORDS_KEY, dead_letters.dead_letter_entry(fixable, ValueError("x")))
    _push(one_redis, "openai:still-bad", result=UNWRITABLE)
    jobs.call_records_drain()
    out = StringIO()
    call_command("routing", "dead-letters", "--json", stdout=out)
    listed = json.loads(out.getvalue())
    assert len(listed) == 2
    ids = {("fixed" if "openai:fixed" in item["payload"] else "bad"): item["id"] for item in listed}
    out = StringIO()
    call_command("routing", "dead-letters", "--replay", "--json", stdout=out)
    outcome = json.loads(out.getvalue())
    assert outcome["recorded"] == [ids["fixed"]]
    assert list(outcome["failed"]) == [ids["bad"]]
    assert RoutedCall.objects.filter(idempotency_key="openai:fixed").count() == 1
    [left] = dead_letters.dead_letters_list(one_redis)
    assert (left.id, left.attempts) == (ids["bad"], 2)
    out = StringIO()
    call_command("routing", "dead-letters", stdout=out)
    assert ids["bad"] in out.getvalue() and "1 dead letter(s)" in out.getvalue()
    call_command("routing", "dead-letters", "--drop", ids["bad"], stdout=StringIO())
    assert dead_letters.dead_letters_list(one_redis) == []


@pytest.mark.redis_server
async def test_health_and_status_report_the_backlog_and_dead_letters(live_redis):
    """/health and `routing status` show the waiting records (count, oldest age) and the
    dead letters; a dead letter makes the health "degraded"."""
    await record_call_deferred(**chat_fields("openai:waiting"))
    live_redis.lpush(FAILED_RECORDS_KEY, dead_letters.dead_letter_entry("{}", ValueError("bad")))
    code, body = await health_report()
    assert code == 200 and body["status"] == "degraded"
    assert body["records"]["pending"] == 1
    assert body["records"]["oldest_age_s"] is not None and body["records"]["oldest_age_s"] >= 0
    assert body["records"]["dead_letters"] == 1
    out = StringIO()
    await sync_to_async(call_command)("routing", "status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["queue"]["records"]["dead_letters"] == 1
    assert status["queue"]["records"]["pending"] == 1
    out = StringIO()
    await sync_to_async(call_command)("routing", "status", stdout=out)
    assert "dead letters          1" in out.getvalue()


def test_reconcile_writes_stranded_records_and_reports_the_backlog(one_redis):
    """`routing reconcile` looks at the records list: it writes what waits there and says
    how many records and dead letters are left."""
    _push(one_redis, "openai:stranded")
    out = StringIO()
    call_command("routing", "reconcile", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["records_written"] == 1
    assert report["records"] == {"pending": 0, "oldest_age_s": None, "dead_letters": 0}
    assert RoutedCall.objects.filter(idempotency_key="openai:stranded").exists()


def test_admin_lists_replays_and_deletes_dead_letters(one_redis, admin_client):
    """The admin page shows the dead letters with their reason; staff replay or delete them."""
    fixable = json.dumps(chat_fields("openai:admin-fixed"))
    one_redis.lpush(FAILED_RECORDS_KEY, dead_letters.dead_letter_entry(fixable, ValueError("x")))
    _push(one_redis, "openai:admin-bad", result=UNWRITABLE)
    jobs.call_records_drain()
    url = "/admin/api/callrecorddeadletter/"
    page = admin_client.get(url)
    assert page.status_code == 200
    letters = {
        ("fixed" if "admin-fixed" in letter.payload else "bad"): letter.id
        for letter in dead_letters.dead_letters_list(one_redis)
    }
    content = page.content.decode()
    assert letters["fixed"] in content and letters["bad"] in content
    assert "input_tokens" in content  # the reason the bad one was refused
    admin_client.post(url, {"action": "replay", "ids": [letters["fixed"]]})
    assert RoutedCall.objects.filter(idempotency_key="openai:admin-fixed").count() == 1
    admin_client.post(url, {"action": "drop", "ids": [letters["bad"]]})
    assert dead_letters.dead_letters_list(one_redis) == []


def test_the_issues_poison_pill_left_in_redis_is_recorded_without_its_nul(one_redis):
    """A NUL payload queued before the API refused them (PostgreSQL raised DataError on it
    and every later drain stopped there) is written with the NUL removed, and so is every
    record behind it."""
    nul_request = {"model": "router", "messages": [{"role": "user", "content": "a\u0000b"}]}
    _push(one_redis, "openai:nul-pill", request_payload=nul_request)
    for index in range(3):
        _push(one_redis, f"openai:after-pill-{index}")
    assert jobs.call_records_drain() == 4
    call = RoutedCall.objects.get(idempotency_key="openai:nul-pill")
    assert call.request_payload["messages"][0]["content"] == "ab"
    assert one_redis.llen(FAILED_RECORDS_KEY) == 0
