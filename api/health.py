"""Health of the platform's dependencies: the database, Redis and the RQ workers."""

from __future__ import annotations

import asyncio
from typing import Any

import django_rq
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from api import redis_client
from api.durability import redis_persistence_async
from api.recording import records_backlog
from api.redis_client import redis_ping
from experiments.jobs import live_worker_count

WORKER_CHECK_TIMEOUT_S = 2.0
#: Call records waiting longer than this make the health "degraded" (the workers drain
#: every few seconds: settings.RQ_PERIODIC_JOBS).
RECORDS_STALE_S = 120.0


def _database_check() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as err:  # any driver error means "down"; the reason is reported
        return {"ok": False, "vendor": connection.vendor, "error": f"{type(err).__name__}: {err}"}
    return {"ok": True, "vendor": connection.vendor}


def _workers_check() -> dict[str, Any]:
    """Live workers by their liveness beat (``experiments.jobs.live_worker_count``), jobs per
    queue, and the call records waiting in Redis (count, oldest age, dead letters)."""
    connection_ = django_rq.get_connection("default")
    count = live_worker_count(connection_)
    queues = {name: django_rq.get_queue(name).count for name in settings.RQ_QUEUE_NAMES}
    records = records_backlog(redis_client.get_sync_client()).as_dict()
    return {"ok": count > 0, "count": count, "queued": queues, "records": records}


def _records_ok(records: dict[str, Any] | None) -> bool:
    """No dead letter, and no record waiting longer than ``RECORDS_STALE_S``."""
    if not records:
        return True
    oldest = records.get("oldest_age_s")
    return not records.get("dead_letters") and (oldest is None or oldest <= RECORDS_STALE_S)


async def health_report() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 "down" when the database does not answer, else 200.

    Redis down, no live worker, a dead letter or call records waiting longer than
    ``RECORDS_STALE_S`` is 200 "degraded": the API still routes and records
    calls (rate limits fall back to the cache, records are written inline); only queued
    calls (``async``) are refused with 503. A load balancer should not pull every server
    out of rotation because the shared Redis is down.
    """
    database = await sync_to_async(_database_check)()
    redis_ok, redis_detail = await redis_ping()
    redis = {"ok": redis_ok} if redis_ok else {"ok": False, "error": redis_detail}
    if redis_ok:
        # Not a health verdict (the status stays "ok"), but what a Redis restart would lose.
        persistence = await redis_persistence_async(redis_client.get_client())
        redis["persistence"] = persistence.as_dict()
    if redis_ok:
        try:
            workers = await asyncio.wait_for(
                sync_to_async(_workers_check)(), timeout=WORKER_CHECK_TIMEOUT_S
            )
        except Exception as err:  # Redis went away between the ping and the query
            workers = {"ok": False, "count": 0, "error": f"{type(err).__name__}: {err}"}
    else:
        workers = {"ok": False, "count": 0, "error": "Redis is unreachable"}
    records = workers.pop("records", None)
    if not database["ok"]:
        status_text, code = "down", 503
    elif not (redis_ok and workers["ok"] and _records_ok(records)):
        status_text, code = "degraded", 200
    else:
        status_text, code = "ok", 200
    return code, {
        "status": status_text,
        "database": database,
        "redis": redis,
        "workers": workers,
        "records": records,
    }
