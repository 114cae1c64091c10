"""RoutingWorker against a real redis-server that goes away: a busy worker waits for Redis
instead of quitting, resumes by itself, and is counted alive by its liveness beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import fakeredis
import pytest

from experiments import jobs
from routing_platform.redis_embedded import start_embedded_redis
from tests.conftest import REPO_ROOT

#: The issue's bar: workers survive a Redis outage of at least 30 s.
OUTAGE_S = 30.0


def _wait_for(predicate, timeout_s: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert process is None or process.poll() is None, f"the worker exited while {what}"
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.redis_server
def test_a_busy_worker_survives_a_redis_outage_and_resumes(tmp_path):
    """Redis stops while the worker runs a job and stays down OUTAGE_S; the worker neither
    quits nor needs a restart: the job completes, the worker is counted alive again (its
    beat, even though Redis lost its registration) and takes the next job."""
    import redis
    from rq import Queue

    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = start_embedded_redis(redis_dir)
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ROUTING_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "manage.py"), "rqworker", "default"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        connection = redis.Redis.from_url(server.url)
        queue = Queue("default", connection=connection)
        queue.enqueue("tests.experiments.outage_jobs.sleep_then_mark", str(tmp_path), "first", 3.0)
        _wait_for((tmp_path / "first.started").exists, 60, "starting the first job", worker)
        server.stop()
        outage_ends = time.monotonic() + OUTAGE_S
        _wait_for((tmp_path / "first.done").exists, 30, "finishing the job", worker)
        _wait_for(lambda: time.monotonic() >= outage_ends, OUTAGE_S + 5, "Redis is down", worker)
        server = start_embedded_redis(redis_dir)
        connection = redis.Redis.from_url(server.url)
        _wait_for(lambda: jobs.live_worker_count(connection) == 1, 30, "beating again", worker)
        Queue("default", connection=connection).enqueue(
            "tests.experiments.outage_jobs.sleep_then_mark", str(tmp_path), "second", 0.0
        )
        _wait_for((tmp_path / "second.done").exists, 60, "taking the next job", worker)
        assert worker.poll() is None
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        log.close()
        server.stop()
    output = (tmp_path / "worker.log").read_text()
    assert "quitting" not in output, output[-3000:]
    assert "Redis is back" in output


def test_live_workers_are_counted_by_their_beat():
    """A worker whose beat is older than WORKER_ALIVE_S (killed with -9) is not counted; one
    that beats now is, also after Redis lost every key (a restart)."""
    connection = fakeredis.FakeRedis()
    connection.zadd(jobs.WORKERS_ALIVE_KEY, {"killed": time.time() - jobs.WORKER_ALIVE_S - 1})
    upkeep = jobs.WorkerUpkeep(connection=connection, worker_name="alive")
    upkeep.beat()
    assert jobs.live_worker_count(connection) == 1
    connection.flushall()  # Redis restarted without its data
    assert jobs.live_worker_count(connection) == 0
    upkeep.beat()
    assert jobs.live_worker_count(connection) == 1
    upkeep.stop()
    assert jobs.live_worker_count(connection) == 0


def test_the_timer_enqueues_each_periodic_job_once_per_period(settings):
    """Two workers beating at once enqueue the drain once; while it waits, never again."""
    from rq import Queue

    settings.RQ_PERIODIC_JOBS = {"api.jobs.call_records_drain": 60.0}
    connection = fakeredis.FakeRedis()
    for name in ("w1", "w2"):
        jobs.WorkerUpkeep(connection=connection, worker_name=name).beat()
    queue = Queue(jobs.PERIODIC_QUEUE, connection=connection)
    assert queue.count == 1
    job = queue.jobs[0]
    assert job.func_name == "api.jobs.call_records_drain"
    assert job.retries_left == 3
    connection.delete("routing:periodic:api.jobs.call_records_drain")  # the period is over
    jobs.WorkerUpkeep(connection=connection, worker_name="w1").beat()
    assert queue.count == 1  # the previous run still waits: not queued twice


def test_only_workers_of_the_maintenance_queue_enqueue_periodic_jobs(settings):
    """A worker on `routing` alone beats but leaves the periodic jobs to the workers that
    will run them (no job piles up on a queue it does not serve)."""
    from rq import Queue

    settings.RQ_PERIODIC_JOBS = {"api.jobs.call_records_drain": 60.0}
    connection = fakeredis.FakeRedis()
    jobs.WorkerUpkeep(connection=connection, worker_name="routing-only", periodic=False).beat()
    assert jobs.live_worker_count(connection) == 1
    assert Queue(jobs.PERIODIC_QUEUE, connection=connection).count == 0
