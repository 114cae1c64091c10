"""Winner report over 1,000,000 recorded calls, on SQLite and PostgreSQL (target <= 1 s).

Each backend runs in its own subprocess (Django is configured once per process) on a
throw-away database: 1,000,000 routed calls of a two-arm experiment over 14 days (with
2% shadow pairs and 100,000 assigned units) are inserted in bulk, the hourly and per-unit
rollups are built with ``rollups_rebuild()``, and ``experiment_report`` (analysed per unit:
the delta method over 100,000 units' sums) is timed (median of 5 runs
after one warm-up). PostgreSQL 15 is started with initdb in a temporary directory when
/usr/lib/postgresql/15/bin exists; otherwise that half is skipped with a note.

Run alone: ``python -m benchmarks.bench_winner_report [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks import run_child
from benchmarks._data import FULL_CALLS, QUICK_CALLS, insert_calls, throwaway_postgres

TITLE = "Winner report over 1,000,000 recorded calls (SQLite and PostgreSQL)"
RUNS = 5


# --- Child: one backend ---------------------------------------------------------------------


def child(backend: str, calls: int) -> dict:
    """Set up Django on a fresh database of ``backend``, load, rebuild, time the report."""
    import statistics

    from benchmarks import setup_django

    database_url = os.environ.get("BENCH_PG_URL") if backend == "postgresql" else None
    setup_django(database_url, ROUTER_PROVIDER_MODE="simulated")
    from django.db import connection

    from experiments.models import ArmRollup, CallRollup, Experiment, RoutedCall, UnitRollup
    from experiments.reports import experiment_report
    from experiments.rollups import rollups_rebuild

    loaded = insert_calls(calls)
    started = time.perf_counter()
    rollup_rows = rollups_rebuild()
    rebuild_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    experiment = Experiment.objects.get(key=loaded["experiment"])
    report = experiment_report(experiment=experiment)  # warm-up
    load_before = os.getloadavg()[0]
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        report = experiment_report(experiment=experiment)
        timings.append(time.perf_counter() - started)
    return {
        "backend": connection.vendor,
        "calls": loaded["calls"],
        "rollup_rows": rollup_rows,
        "rollup_rows_in_db": CallRollup.objects.count(),
        "arm_rollup_rows": ArmRollup.objects.filter(experiment_key=loaded["experiment"]).count(),
        "shadow_pairs": RoutedCall.objects.filter(is_shadow=True).count(),
        "unit_rollup_rows": UnitRollup.objects.filter(experiment_key=loaded["experiment"]).count(),
        "analysis_unit": report["analysis_unit"],
        "load_average": load_before,
        "insert_s": loaded["insert_s"],
        "rebuild_s": rebuild_s,
        "report_median_s": statistics.median(timings),
        "report_runs_s": timings,
        "decision": report["decision"]["status"],
        "arms_calls": {arm["key"]: arm["summary"]["calls"] for arm in report["arms"]},
    }


# --- Parent: start PostgreSQL, run both children ---------------------------------------------


def _run_child(backend: str, calls: int, env: dict) -> dict:
    return run_child("benchmarks.bench_winner_report", backend, calls, env)


def _figure(result: dict, calls: int) -> dict:
    backend = result["backend"]
    return {
        "metric": f"winner report, {backend}, {result['calls']:,} calls",
        "value": round(result["report_median_s"], 3),
        "unit": "s",
        "target": "<= 1 s",
        "met": result["report_median_s"] <= 1.0 if calls >= FULL_CALLS else None,
        "notes": (
            f"median of {RUNS} runs (after a warm-up); analysis unit: {result['analysis_unit']}; "
            f"the report reads {result['unit_rollup_rows']:,} per-unit rows (one GROUP BY arm), "
            f"{result['arm_rollup_rows']:,} "
            f"per-arm hourly rollup rows and the latest {min(result['shadow_pairs'], 5000):,} "
            f"of {result['shadow_pairs']:,} shadow pairs "
            f"({result['rollup_rows']:,} CallRollup rows in all); "
            f"machine load average {result['load_average']:.1f} on 2 cores; "
            f"runs {', '.join(f'{t:.3f}' for t in result['report_runs_s'])} s; "
            f"rollups_rebuild {result['rebuild_s']:.1f} s, bulk insert {result['insert_s']:.1f} s; "
            f"decision: {result['decision']}"
        ),
    }


def run(quick: bool = False) -> list[dict]:
    calls = QUICK_CALLS if quick else FULL_CALLS
    figures = [_figure(_run_child("sqlite", calls, {}), calls)]
    with throwaway_postgres() as (url, reason):
        if url is None:
            figures.append(
                {
                    "metric": "winner report, postgresql",
                    "value": 0.0,
                    "unit": "s",
                    "target": "<= 1 s",
                    "met": None,
                    "notes": f"skipped: {reason}",
                }
            )
        else:
            figures.append(_figure(_run_child("postgresql", calls, {"BENCH_PG_URL": url}), calls))
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
