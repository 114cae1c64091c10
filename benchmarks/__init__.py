"""Benchmarks: one `bench_<name>.py` per target of TARGETS.md, run by `make bench` (run.py).

Helpers shared by the benchmarks live here so each one stays about what it measures.
"""

from __future__ import annotations

import os
import statistics
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
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_platform.settings")
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)
    return data_dir
