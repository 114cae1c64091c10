"""Benchmarks: one `bench_<name>.py` per target of TARGETS.md, run by `make bench` (run.py).

Helpers shared by the benchmarks live here so each one stays about what it measures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def median_of(measure: Callable[[], float], runs: int = 5) -> float:
    """The median of ``runs`` calls of ``measure`` (each returns one figure)."""
    return statistics.median(measure() for _ in range(runs))


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def setup_django(database_url: str | None = None, **env: str) -> Path:
    """Configure Django on a throw-away database and data dir (never the dev DB), migrated.

    ``database_url`` None means a fresh SQLite file in a temporary directory; pass a
    PostgreSQL URL to measure there. Extra keyword arguments become environment variables
    read by settings (e.g. ``ROUTER_PROVIDER_MODE="simulated"``). Call once per process,
    before importing models. Returns the temporary data directory.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="routing-bench-"))
    os.environ["ROUTING_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{data_dir / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)
    return data_dir


def run_child(module: str, backend: str, calls: int, env: dict, timeout_s: float = 3600) -> dict:
    """Run ``python -m <module> --child BACKEND --calls N`` and return its last stdout line as JSON.

    The 1M-call benchmarks measure each database backend in a fresh process (its own Django
    setup and database); the child prints one JSON object as its final line.
    """
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", backend, "--calls", str(calls)],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} child failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
