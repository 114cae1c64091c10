"""The real queue: a real Redis, real ``manage.py rqworker`` processes, a shared database.

Why these tests do not use pytest-django's database: a worker is another process, and
pytest-django's test database is an in-memory SQLite (or, on PostgreSQL, rows inside a
transaction that is rolled back) that no other process can see. So the module builds its
own database and hands it to every process through ``DATABASE_URL``:

- SQLite (the default): a file in a temporary directory;
- PostgreSQL (``DATABASE_URL`` set, as in CI): a scratch database created on that server
  and dropped afterwards.

``tests/experiments/rq_harness.py`` migrates it and writes the calls through the real
services; workers run ``routed_call_execute`` jobs on the simulated provider; the test
itself only reads the database (plain SQL) and talks to Redis (plain RQ). The module is
marked ``postgres`` so CI repeats it on PostgreSQL 15, and ``redis_server`` for the real
redis-server run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.redis_server, pytest.mark.postgres, pytest.mark.slow]


# --- the shared database --------------------------------------------------------------------


def _postgres_scratch_url(base_url: str):
    import psycopg

    name = f"rqit_{uuid.uuid4().hex[:10]}"
    parts = urlparse(base_url)
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parts._replace(path=f"/{name}")), name


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    base_url = os.environ.get("DATABASE_URL", "")
    if base_url.startswith(("postgres://", "postgresql://")):
        import psycopg

        url, name = _postgres_scratch_url(base_url)
        yield url
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    yield f"sqlite:///{tmp_path_factory.mktemp('rqdb') / 'integration.sqlite3'}"


def _query(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30) as db:
            return db.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(sql, params).fetchall()


def _calls(database_url: str, ids: list[int]) -> dict[int, dict]:
    marks = ", ".join(["%s"] * len(ids))
    rows = _query(
        database_url,
        "SELECT id, status, attempts, is_shadow, paired_call_id, error_message "
        f"FROM experiments_routedcall WHERE id IN ({marks}) OR paired_call_id IN ({marks})",
        tuple(ids) * 2,
    )
    return {
        row[0]: {
            "status": row[1],
            "attempts": row[2],
            "is_shadow": bool(row[3]),
            "paired": row[4],
            "error": row[5],
        }
        for row in rows
    }


def _rolled_up(database_url: str, experiment_key: str) -> int:
    rows = _query(
        database_url,
        "SELECT COALESCE(SUM(n), 0) FROM experiments_callrollup WHERE experiment_key = %s",
        (experiment_key,),
    )
    return int(rows[0][0])


# --- processes -------------------------------------------------------------------------------


def _env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_API_KEY") and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ROUTING_DATA_DIR=str(data_dir),
        ROUTER_PROVIDER_MODE="simulated",
        ROUTER_SIMULATED_LATENCY_MS="0",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    if os.environ.get("RQ_IT_DEBUG"):
        print(done.stdout, done.stderr)
    return done.stdout


def _worker_args(*queues: str, burst: bool = True) -> list[str]:
    return ["manage.py", "rqworker", *queues, *(["--burst"] if burst else [])]


@pytest.fixture(scope="module")
def scenario(database_url, real_redis_url, tmp_path_factory):
    """The database, migrated, with a running experiment and one held-back call (no job
    yet) per single-call scenario."""
    import redis

    redis.Redis.from_url(real_redis_url).flushdb()
    data_dir = tmp_path_factory.mktemp("rqdata")
    env = _env(database_url, real_redis_url, data_dir)
    out = _run(["-m", "tests.experiments.rq_harness", "setup", "kill", "lock"], env)
    setup = json.loads(out.strip().splitlines()[-1])
    setup.update(env=env, data_dir=data_dir, database_url=database_url, redis_url=real_redis_url)
    return setup


def _enqueue_by_name(redis_url: str, call_id: int, job_id: str, queue: str = "routing"):
    """Enqueue the job as the services do, from outside Django (RQ resolves the path)."""
    import redis
    from rq import Callback, Queue, Retry

    connection = redis.Redis.from_url(redis_url)
    return Queue(queue, connection=connection).enqueue(
        "experiments.jobs.routed_call_execute",
        call_id,
        job_id=job_id,
        retry=Retry(max=3),
        on_failure=Callback("experiments.jobs.routed_call_failed"),
        job_timeout=300,
    )


# --- the tests -------------------------------------------------------------------------------


def test_every_enqueued_call_is_recorded_exactly_once_even_if_its_job_runs_twice(scenario):
    """Calls written through the services are enqueued on commit; every job is then
    delivered a second time (a retried or duplicated delivery); a burst worker drains both
    queues and each call (and its shadow twin) is recorded exactly once."""
    db, key = scenario["database_url"], scenario["experiment"]
    before = _rolled_up(db, key)
    out = _run(["-m", "tests.experiments.rq_harness", "enqueue", "12", "0.25"], scenario["env"])
    bulk = json.loads(out.strip().splitlines()[-1])["ids"]
    queued = _calls(db, bulk)
    assert {call["status"] for call in queued.values()} == {"queued"}
    for call_id, call in queued.items():
        queue = "shadow" if call["is_shadow"] else "routing"
        _enqueue_by_name(scenario["redis_url"], call_id, f"again-{call_id}", queue)

    _run(_worker_args("routing", "shadow"), scenario["env"])
    calls = _calls(db, bulk)
    primaries = [call for call in calls.values() if not call["is_shadow"]]
    shadows = [call for call in calls.values() if call["is_shadow"]]
    assert len(primaries) == 12
    assert len(shadows) >= 4  # every third call has a twin
    assert {call["status"] for call in calls.values()} == {"success"}
    assert {call["attempts"] for call in calls.values()} == {1}  # the second run did nothing
    assert all(call["paired"] for call in shadows)
    assert _rolled_up(db, key) == before + len(calls)


def test_completed_pairs_are_judged_by_a_worker_on_the_judge_queue(scenario):
    """Six calls with shadow twins: once a worker has run both sides, each pair's judge job
    waits on the "judge" queue; a worker on that queue records one simulated verdict per
    pair (agreement is recorded already, for the script evaluations)."""
    import redis
    from rq import Queue

    db = scenario["database_url"]
    out = _run(["-m", "tests.experiments.rq_harness", "enqueue", "6", "1.0"], scenario["env"])
    ids = json.loads(out.strip().splitlines()[-1])["ids"]
    _run(_worker_args("routing", "shadow"), scenario["env"])
    marks = ", ".join(["%s"] * len(ids))
    signals_sql = (
        "SELECT s.source, s.status, s.simulated FROM experiments_qualitysignal s "
        "JOIN experiments_routedcall c ON c.id = s.call_id "
        f"WHERE c.id IN ({marks}) OR c.paired_call_id IN ({marks})"
    )
    before = _query(db, signals_sql, tuple(ids) * 2)
    assert [row[0] for row in before].count("agreement") == 3
    assert "judge" not in {row[0] for row in before}
    assert Queue("judge", connection=redis.Redis.from_url(scenario["redis_url"])).count >= 6

    _run(_worker_args("judge"), scenario["env"])
    judged = [row for row in _query(db, signals_sql, tuple(ids) * 2) if row[0] == "judge"]
    assert len(judged) == 6
    assert all(row[1] == "ok" and bool(row[2]) for row in judged)


def test_a_worker_killed_mid_job_is_retried_and_recorded_once(scenario):
    """SIGKILL the worker's process group while the call runs; once RQ notices the
    abandoned job it is retried, and the call ends recorded exactly once."""
    import redis
    from rq import Queue
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    db, key = scenario["database_url"], scenario["experiment"]
    held = scenario["held"]["kill"]
    before = _rolled_up(db, key)
    _enqueue_by_name(scenario["redis_url"], held["id"], held["job_id"])
    slow_env = {**scenario["env"], "ROUTER_SIMULATED_LATENCY_MS": "20000"}
    worker = subprocess.Popen(
        [sys.executable, *_worker_args("routing", burst=False)],
        env=slow_env,
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _calls(db, [held["id"]])[held["id"]]["status"] != "running":
            assert time.monotonic() < deadline, "the worker never started the call"
            assert worker.poll() is None, "the worker exited early"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert _calls(db, [held["id"]])[held["id"]]["status"] == "running"

    # RQ notices an abandoned job once its heartbeat expires (a minute or more); a
    # surviving worker's maintenance then runs this cleanup. Run it as of an hour later.
    connection = redis.Redis.from_url(scenario["redis_url"])
    registry = StartedJobRegistry("routing", connection=connection)
    registry.cleanup(timestamp=time.time() + 3600)
    job = Job.fetch(held["job_id"], connection=connection)
    assert job.get_status() == "queued" and job.retries_left == 2
    assert held["job_id"] in Queue("routing", connection=connection).job_ids

    _run(_worker_args("routing"), scenario["env"])
    call = _calls(db, [held["id"]])[held["id"]]
    assert call["status"] == "success"
    assert call["attempts"] == 2
    assert _rolled_up(db, key) == before + 1


def test_a_locked_database_delays_the_record_but_never_doubles_it(scenario):
    """While another process holds the database's write lock, the worker waits; when the
    lock is released the call is recorded once (and a second delivery adds nothing)."""
    import redis
    from rq.job import Job

    db, key = scenario["database_url"], scenario["experiment"]
    held = scenario["held"]["lock"]
    before = _rolled_up(db, key)
    locker = subprocess.Popen(
        [sys.executable, "-m", "tests.experiments.rq_harness", "lock"],
        env=scenario["env"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        _enqueue_by_name(scenario["redis_url"], held["id"], held["job_id"])
        _enqueue_by_name(scenario["redis_url"], held["id"], held["job_id"] + "-twice")
        worker = subprocess.Popen(
            [sys.executable, *_worker_args("routing")],
            env=scenario["env"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        connection = redis.Redis.from_url(scenario["redis_url"])
        deadline = time.monotonic() + 120
        while Job.fetch(held["job_id"], connection=connection).get_status() != "started":
            assert time.monotonic() < deadline, "the worker never picked the job"
            time.sleep(0.2)
        time.sleep(1.0)  # the worker is now blocked on the lock
        assert _calls(db, [held["id"]])[held["id"]]["status"] == "queued"
    finally:
        locker.stdin.write("release\n")
        locker.stdin.flush()
        locker.wait(timeout=30)
    assert worker.wait(timeout=180) == 0
    call = _calls(db, [held["id"]])[held["id"]]
    assert call["status"] == "success" and call["attempts"] == 1
    assert _rolled_up(db, key) == before + 1
