"""Which RQ workers are alive, by their own liveness beat (``experiments.jobs.WorkerUpkeep``).

RQ's worker registry keeps a worker killed with -9 for minutes and forgets a live one when
Redis restarts without persistence; a beat every ``WORKER_BEAT_S`` into one sorted set
gets both right. Below the services: the reconciler reads it, the worker writes it.
"""

from __future__ import annotations

import time

#: Sorted set of worker name -> time of its last liveness beat (``WorkerUpkeep``).
WORKERS_ALIVE_KEY = "routing:workers:alive"
WORKER_BEAT_S = 5.0
#: A worker whose last beat is older than this is not counted as alive.
WORKER_ALIVE_S = 3 * WORKER_BEAT_S


def live_worker_count(connection) -> int:
    """Workers whose liveness beat is younger than ``WORKER_ALIVE_S``: a worker killed with
    -9 stops counting within seconds, and one that outlived a Redis restart counts again at
    its next beat (RQ's own registry gets neither right)."""
    return int(connection.zcount(WORKERS_ALIVE_KEY, time.time() - WORKER_ALIVE_S, "+inf"))


def worker_stopped_beating(connection, worker_name: str | None) -> bool:
    """Whether a worker that beat has not beaten for ``WORKER_ALIVE_S``. A worker that never
    beat (a plain RQ worker) is not judged: False."""
    if not worker_name:
        return False
    last_beat = connection.zscore(WORKERS_ALIVE_KEY, worker_name)
    return last_beat is not None and float(last_beat) < time.time() - WORKER_ALIVE_S
