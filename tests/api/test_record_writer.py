"""The in-process record writer: records written after the answer when Redis is absent,
never dropped (full queue -> inline, errors retried, refusals kept in a file), flushed on
shutdown (ASGI lifespan, SIGTERM of a real uvicorn)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import threading

import httpx
import pytest
from django.db import OperationalError

from api import recording
from api.asgi import with_lean_api_handler
from api.record_writer import RecordWriter, jsonl_dead_letter
from experiments.models import RoutedCall
from routing_platform.launcher import uvicorn_argv
from tests.api.conftest import (
    _copy_test_database,
    _free_port,
    _insert_api_key,
    server_answers,
)
from tests.api.test_jobs import chat_fields
from tests.conftest import REPO_ROOT


def _writer(write, tmp_path, **options) -> RecordWriter:
    return RecordWriter(
        write,
        dead_letter=jsonl_dead_letter(
            tmp_path / "dead.jsonl", lambda line: json.dumps(line).encode()
        ),
        **options,
    )


def _dead_lines(tmp_path) -> list[dict]:
    path = tmp_path / "dead.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_records_are_written_in_order_off_the_callers_thread(tmp_path, caplog):
    """Each submitted record is written once, oldest first, by the writer's own thread;
    stop logs how many it wrote."""
    written, threads = [], set()

    def write(fields):
        written.append(fields["n"])
        threads.add(threading.current_thread().name)

    writer = _writer(write, tmp_path)
    assert all(writer.submit({"n": n}) for n in range(50))
    with caplog.at_level(logging.INFO, logger="api.record_writer"):
        counts = writer.stop()
    assert written == list(range(50))
    assert threads == {"call-record-writer"}
    assert (counts.written, counts.dead_lettered, counts.pending) == (50, 0, 0)
    assert "pending record(s) on shutdown" in caplog.text
    assert writer.submit({"n": 99}) is False  # stopped: the caller writes inline


def test_a_full_queue_refuses_so_the_caller_writes_inline(tmp_path):
    """With max_pending records waiting, submit returns False instead of dropping one."""
    release = threading.Event()
    written = []

    def write(fields):
        release.wait(10)
        written.append(fields["n"])

    writer = _writer(write, tmp_path, max_pending=2)
    accepted = [writer.submit({"n": n}) for n in range(5)]
    # One is being written (blocked), two wait; the rest are refused.
    assert accepted.count(True) in (2, 3) and accepted[-1] is False
    release.set()
    writer.stop()
    assert written == [n for n, ok in enumerate(accepted) if ok]


def test_database_errors_are_retried_until_the_write_succeeds(tmp_path):
    """An OperationalError (database restarting) is retried with backoff, not lost."""
    attempts = []

    def write(fields):
        attempts.append(fields["n"])
        if len(attempts) < 3:
            raise OperationalError("server closed the connection unexpectedly")

    writer = _writer(write, tmp_path)
    writer.submit({"n": 1})
    assert writer.flush(10)
    writer.stop()
    assert attempts == [1, 1, 1]
    assert writer.written == 1 and _dead_lines(tmp_path) == []


def test_a_refused_record_goes_to_the_dead_letter_file_and_the_rest_continue(tmp_path):
    """A record the database refuses for good is kept (with the reason); the next is written."""
    written = []

    def write(fields):
        if fields["n"] == 1:
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        written.append(fields["n"])

    writer = _writer(write, tmp_path)
    for n in range(3):
        writer.submit({"n": n})
    writer.stop()
    assert written == [0, 2]
    [line] = _dead_lines(tmp_path)
    assert line["payload"] == {"n": 1}
    assert "NUL" in line["reason"]


def test_records_left_when_the_shutdown_times_out_are_kept_in_the_file(tmp_path):
    """A writer stuck past the stop timeout: what is still queued goes to the file."""
    release = threading.Event()
    writer = _writer(lambda fields: release.wait(10), tmp_path)
    for n in range(4):
        writer.submit({"n": n})
    counts = writer.stop(timeout_s=0.3)
    release.set()
    kept = sorted(line["payload"]["n"] for line in _dead_lines(tmp_path))
    assert kept == [1, 2, 3]  # record 0 was in the writer's hands
    assert counts.dead_lettered == 3


# --- Through the API's hand-off -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_without_redis_the_record_is_deferred_and_written_after(redis_down, flush_records):
    """Redis unreachable (default mode): "deferred", and the row exists once flushed."""
    assert await recording.record_call_deferred(**chat_fields("openai:deferred")) == "deferred"
    assert await flush_records()
    call = await RoutedCall.objects.aget(idempotency_key="openai:deferred")
    assert call.status == "success"


@pytest.mark.django_db(transaction=True)
async def test_a_full_writer_records_inline(redis_down, monkeypatch, tmp_path):
    """When the writer refuses (queue full) the record is written before returning."""
    full = _writer(lambda fields: None, tmp_path, max_pending=1)
    full.stop()  # a stopped writer refuses every submit, as a full one does
    monkeypatch.setattr(recording, "_writer", full)
    assert await recording.record_call_deferred(**chat_fields("openai:full")) == "recorded"
    assert await RoutedCall.objects.filter(idempotency_key="openai:full").aexists()


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_lifespan_shutdown_flushes_pending_records(redis_down, caplog):
    """lifespan.startup completes; lifespan.shutdown writes every pending record first."""
    application = with_lean_api_handler(django_application=None)  # lifespan never reaches it
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        message = next(messages)
        if message["type"] == "lifespan.shutdown":
            for n in range(20):
                await recording.record_call_deferred(**chat_fields(f"openai:life-{n}"))
        return message

    async def send(message):
        sent.append(message["type"])

    with caplog.at_level(logging.INFO, logger="api.record_writer"):
        await application({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert (
        await RoutedCall.objects.filter(idempotency_key__startswith="openai:life-").acount() == 20
    )
    assert "pending record(s) on shutdown" in caplog.text


@pytest.mark.slow
def test_sigterm_of_a_real_server_without_redis_loses_no_record(
    tmp_path, django_db_setup, django_db_blocker
):
    """uvicorn with no Redis: 30 chats answered 200, SIGTERM, every one has its row."""
    database_path = tmp_path / "db.sqlite3"
    if not _copy_test_database(database_path, django_db_setup, django_db_blocker):
        pytest.skip("needs the SQLite test database (this run uses another database)")
    token = _insert_api_key(database_path, name="sigterm", rate_limit_per_minute=100_000)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{database_path}",
        "ROUTING_DATA_DIR": str(tmp_path),
        "REDIS_URL": f"unix://{tmp_path / 'nobody-listens.sock'}?db=0",
        "ROUTER_PROVIDER_MODE": "simulated",
        "ROUTER_SIMULATED_LATENCY_MS": "1",
        "LOG_LEVEL": "INFO",
    }
    port = _free_port()
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            uvicorn_argv("127.0.0.1", port),
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert server_answers(base, server), log_path.read_text()[-3000:]
            with httpx.Client(base_url=base, timeout=30) as client:
                for n in range(30):
                    answer = client.post(
                        "/v1/chat/completions",
                        json={
                            "model": "router",
                            "messages": [{"role": "user", "content": f"q{n}"}],
                        },
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert answer.status_code == 200, answer.text
            server.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then re-raises the signal: exit status -15.
            assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        finally:
            if server.poll() is None:
                server.kill()
    with sqlite3.connect(database_path) as connection:
        (rows,) = connection.execute(
            "SELECT COUNT(*) FROM experiments_routedcall WHERE source = 'openai'"
        ).fetchone()
    assert rows == 30
    assert "pending record(s) on shutdown" in log_path.read_text()
