"""Dashboard page over 1,000,000 recorded calls, on SQLite and PostgreSQL (target <= 1 s
server time).

Each backend runs in its own subprocess on a throw-away database loaded by
``benchmarks._data.insert_calls`` (the winner report's data: a two-arm experiment, 14 days,
2% shadow pairs) and ``rollups_rebuild()``. The first page request is timed on its own: it
compacts every closed day into ``CallRollupDaily`` (a one-off per day) and builds the
process's first Plotly figures. Then, as medians of 5 runs after one warm-up:

- the admin dashboard page, ``GET /admin/dashboard/dashboard/`` through Django's full
  request stack (middleware, session, queries, charts, template), for the page's default
  window (7 days) and for all time (every rollup row);
- ``router_dashboard.get_dashboard()`` (all time), the guide's Python call.

Run alone: ``python -m benchmarks.bench_dashboard [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from benchmarks import run_child
from benchmarks._data import FULL_CALLS, QUICK_CALLS, throwaway_postgres

TITLE = "Dashboard page over 1,000,000 recorded calls (SQLite and PostgreSQL)"
RUNS = 5
TARGET_S = 1.0


def _median_seconds(fn, runs: int = RUNS) -> tuple[float, list[float]]:
    fn()  # warm-up
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), timings


def child(backend: str, calls: int) -> dict:
    """Load ``calls`` calls into a fresh database of ``backend`` and time the dashboard."""
    from benchmarks import setup_django

    database_url = os.environ.get("BENCH_PG_URL") if backend == "postgresql" else None
    setup_django(database_url, ROUTER_PROVIDER_MODE="simulated")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from benchmarks._data import insert_calls
    from experiments.models import CallRollup, CallRollupDaily
    from experiments.rollups import rollups_rebuild
    from routing_platform.routing.dashboard import router_dashboard

    loaded = insert_calls(calls)
    started = time.perf_counter()
    rollups_rebuild()
    rebuild_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    user = get_user_model().objects.create_user(
        username="bench", password="unused-bench-password", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(user)

    def page(window: str):
        def get():
            response = client.get("/admin/dashboard/dashboard/", {"window": window})
            if response.status_code != 200 or b"dashboard-charts-data" not in response.content:
                raise RuntimeError(f"dashboard page failed: {response.status_code}")
            return response

        return get

    started = time.perf_counter()
    page("all")()  # the first request compacts every closed day
    cold_s = time.perf_counter() - started
    page_7d, page_7d_runs = _median_seconds(page("7d"))
    page_all, page_all_runs = _median_seconds(page("all"))
    api_all, api_all_runs = _median_seconds(lambda: router_dashboard.get_dashboard())
    data = router_dashboard.get_dashboard()
    return {
        "backend": connection.vendor,
        "calls": loaded["calls"],
        "rollup_rows": CallRollup.objects.count(),
        "rebuild_s": rebuild_s,
        "cold_s": cold_s,
        "daily_rows": CallRollupDaily.objects.count(),
        "insert_s": loaded["insert_s"],
        "page_7d_s": page_7d,
        "page_7d_runs": page_7d_runs,
        "page_all_s": page_all,
        "page_all_runs": page_all_runs,
        "api_all_s": api_all,
        "api_all_runs": api_all_runs,
        "requests_seen": data["overview"]["total_requests"],
        "load_average": os.getloadavg()[0],
        "alerts": [alert["rule"] for alert in data["alerts"]],
    }


def _run_child(backend: str, calls: int, env: dict) -> dict:
    return run_child("benchmarks.bench_dashboard", backend, calls, env)


def _runs(timings: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in timings)


def _figures(result: dict, full: bool) -> list[dict]:
    backend, calls = result["backend"], result["calls"]
    common = (
        f"{result['rollup_rows']:,} hourly rollup rows from {calls:,} calls "
        f"(rollups_rebuild {result['rebuild_s']:.1f} s), {result.get('daily_rows', 0):,} daily "
        f"rows; median of {RUNS} after a warm-up; 1-min load average "
        f"{result.get('load_average', 0):.1f} on {os.cpu_count()} cores"
    )
    figures = []
    for key, what in (
        ("page_7d", "dashboard page, last 7 days (default)"),
        ("page_all", "dashboard page, all time"),
        ("api_all", "get_dashboard(), all time"),
    ):
        value = result[f"{key}_s"]
        figures.append(
            {
                "metric": f"{what}, {backend}, {calls:,} calls",
                "value": round(value, 3),
                "unit": "s",
                "target": "<= 1 s",
                "met": (value <= TARGET_S) if full else None,
                "notes": f"{common}; runs {_runs(result[f'{key}_runs'])} s",
            }
        )
    if "cold_s" in result:
        figures.append(
            {
                "metric": f"first dashboard page after loading, {backend}, {calls:,} calls",
                "value": round(result["cold_s"], 3),
                "unit": "s",
                "target": "(one-off)",
                "met": None,
                "notes": (
                    "includes compacting every closed day into CallRollupDaily (once per day, "
                    "and again after rollups_rebuild) and the process's first Plotly figures"
                ),
            }
        )
    return figures


def _failed(backend: str, reason: str) -> dict:
    return {
        "metric": f"dashboard page, {backend}",
        "value": 0.0,
        "unit": "s",
        "target": "<= 1 s",
        "met": None,
        "notes": reason[-400:].replace("\n", " "),
    }


def run(quick: bool = False) -> list[dict]:
    calls = QUICK_CALLS if quick else FULL_CALLS
    try:
        figures = _figures(_run_child("sqlite", calls, {}), not quick)
    except RuntimeError as error:
        figures = [_failed("sqlite", f"failed: {error}")]
    with throwaway_postgres() as (url, reason):
        if url is None:
            figures.append(_failed("postgresql", f"skipped: {reason}"))
        else:
            try:
                figures += _figures(
                    _run_child("postgresql", calls, {"BENCH_PG_URL": url}), not quick
                )
            except RuntimeError as error:
                figures.append(_failed("postgresql", f"failed: {error}"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgresql"])
    parser.add_argument("--calls", type=int, default=FULL_CALLS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls)))
        return
    print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
