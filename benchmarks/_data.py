"""Bulk data shared by the Django benchmarks (winner report, dashboard): a two-arm
experiment with 1,000,000 routed calls over 14 days, inserted fast, and a throw-away
PostgreSQL 15 server.

The generator is the statistics engineer's, from ``bench_winner_report.py``, moved here so
that both benchmarks measure the same data: ``insert_calls(calls)`` creates the running
experiment ``bench`` (council vs smart, 50/50, 100,000 assigned units), the calls (70%
evaluations, 5 task types, 3 providers, 15% escalations on the smart arm, ~1% errors,
2% shadow pairs), spread uniformly over the last ``DAYS`` days; then call
``experiments.rollups.rollups_rebuild()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FULL_CALLS = 1_000_000
QUICK_CALLS = 100_000
UNITS = 100_000
DAYS = 14
SHADOW_SHARE = 0.02


def generate(calls: int, seed: int = 7):
    """Column arrays of ``calls`` primary calls plus their shadow twins (numpy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    unit = rng.integers(0, UNITS, calls)
    unit_arm = rng.integers(0, 2, UNITS)  # 0 council (control), 1 smart
    arm = unit_arm[unit]
    smart = arm == 1
    complexity = rng.choice(3, calls, p=[0.5, 0.35, 0.15])
    escalated = smart & (rng.random(calls) < 0.15)
    tier = np.where(smart, np.minimum(complexity + escalated, 2), 2)
    provider = rng.integers(0, 3, calls)
    error = rng.random(calls) < np.where(smart, 0.012, 0.01)
    tier_cost = np.array([0.0006, 0.003, 0.012])
    cost = np.where(error, 0.0, rng.gamma(2.0, tier_cost[tier] / 2.0))
    tier_latency = np.array([600.0, 1200.0, 2400.0])
    latency = rng.lognormal(np.log(tier_latency[tier]), 0.45)
    quality = np.clip(rng.normal(np.where(smart, 74.6, 75.0), 10.0), 0, 100)
    confidence = np.clip(rng.normal(np.where(smart, 0.8, 0.86), 0.08), 0, 1)
    seconds = rng.uniform(0, DAYS * 86400 - 1, calls)
    shadow = rng.random(calls) < SHADOW_SHARE
    return {
        "start": start,
        "end": end,
        "unit": unit,
        "unit_arm": unit_arm,
        "arm": arm,
        "complexity": complexity,
        "escalated": escalated,
        "tier": tier,
        "provider": provider,
        "error": error,
        "cost": cost,
        "latency": latency,
        "quality": quality,
        "confidence": confidence,
        "seconds": seconds,
        "kind": rng.random(calls) < 0.7,
        "task": rng.integers(0, 5, calls),
        "shadow": shadow,
        "rng": rng,
    }


COMPLEXITY = ("simple", "medium", "complex")
TIER = ("mini", "standard", "premium")
PROVIDERS = ("openai", "anthropic", "gemini")
MODELS = {
    ("mini", "openai"): "gpt-4o-mini",
    ("mini", "anthropic"): "claude-3-5-haiku",
    ("mini", "gemini"): "gemini-1.5-flash",
    ("standard", "openai"): "gpt-4.1-mini",
    ("standard", "anthropic"): "claude-3-5-haiku",
    ("standard", "gemini"): "gemini-1.5-pro",
    ("premium", "openai"): "gpt-4o",
    ("premium", "anthropic"): "claude-3-5-sonnet",
    ("premium", "gemini"): "gemini-1.5-pro",
}
TASKS = ("analysis", "classification", "creative", "summarization", "extraction")


def insert_calls(calls: int) -> dict:
    """Bulk-insert the experiment, its units and calls; returns row counts and seconds."""
    from django.db import connection, transaction

    from experiments.models import Arm, Assignment, Experiment, Phase, RoutedCall

    data = generate(calls)
    started = time.perf_counter()
    experiment = Experiment.objects.create(
        key="bench",
        name="Smart routing vs council",
        status=Experiment.Status.RUNNING,
        started_at=data["start"],
        minimum_sample_per_arm=200,
    )
    arms = [
        Arm.objects.create(
            experiment=experiment, key="council", strategy="original_council", is_control=True
        ),
        Arm.objects.create(
            experiment=experiment, key="smart", strategy="smart_routing", position=1
        ),
    ]
    phase = Phase.objects.create(
        experiment=experiment,
        number=1,
        hash_seed="bench",
        arm_keys=["council", "smart"],
        weights=[0.5, 0.5],
    )
    Phase.objects.filter(pk=phase.pk).update(started_at=data["start"])
    Assignment.objects.bulk_create(
        (
            Assignment(experiment=experiment, phase=phase, arm=arms[int(a)], unit_id=f"u{index}")
            for index, a in enumerate(data["unit_arm"])
        ),
        batch_size=5000,
    )

    fields = [f for f in RoutedCall._meta.concrete_fields]
    columns = [f.column for f in fields]
    defaults = {}
    for f in fields:
        value = f.get_default()
        if f.get_internal_type() == "JSONField":
            value = json.dumps(value if value is not None else None)
        defaults[f.column] = value
    vendor = connection.vendor

    def moment(seconds: float) -> object:
        value = data["start"] + timedelta(seconds=float(seconds))
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if vendor == "sqlite" else value

    arm_ids = [arms[0].pk, arms[1].pk]
    strategies = ("original_council", "smart_routing")
    total = calls + int(data["shadow"].sum())
    shadow_index = calls  # ids are 1-based: primary i -> id i + 1

    def rows():
        for i in range(calls):
            yield from _rows_for(i)

    def _row(i: int, row_id: int, arm: int, is_shadow: bool, paired: int | None):
        tier = TIER[int(data["tier"][i]) if arm == 1 else 2]
        provider = PROVIDERS[int(data["provider"][i])]
        error = bool(data["error"][i])
        when = moment(data["seconds"][i])
        values = dict(defaults)
        values.update(
            id=row_id,
            idempotency_key=f"k{row_id}",
            kind="evaluate" if data["kind"][i] else "execute",
            source="shadow" if is_shadow else "sdk",
            status="error" if error else "success",
            experiment_id=experiment.pk,
            arm_id=arm_ids[arm],
            phase_id=phase.pk,
            unit_id=f"u{int(data['unit'][i])}",
            strategy=strategies[arm],
            is_shadow=is_shadow,
            paired_call_id=paired,
            task_type=TASKS[int(data["task"][i])],
            complexity=COMPLEXITY[int(data["complexity"][i])],
            tier=tier,
            model=MODELS[(tier, provider)],
            provider=provider,
            escalated=bool(data["escalated"][i]) and arm == 1,
            confidence=None if error else float(data["confidence"][i]),
            input_tokens=400,
            output_tokens=250,
            cost_usd=f"{float(data['cost'][i]):.10f}",
            baseline_cost_usd="0.0120000000",
            latency_ms=None if error else float(data["latency"][i]),
            final_score=None if error else float(data["quality"][i]),
            created_at=when,
            completed_at=when,
            attempts=1,
        )
        return tuple(values[column] for column in columns)

    def _rows_for(i: int):
        nonlocal shadow_index
        arm = int(data["arm"][i])
        if data["shadow"][i]:
            shadow_index += 1
            yield _row(i, i + 1, arm, False, shadow_index)
            yield _row(i, shadow_index, 1 - arm, True, i + 1)
        else:
            yield _row(i, i + 1, arm, False, None)

    table = RoutedCall._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql":
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED on PostgreSQL, so a
            # pair may point at a row that comes later in the COPY.
            with cursor.connection.cursor() as raw:
                with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
                raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [total])
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
            cursor.execute("PRAGMA foreign_keys = OFF")
            batch = []
            for row in rows():
                batch.append(row)
                if len(batch) >= 20000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
            cursor.execute("PRAGMA foreign_keys = ON")
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"calls": total, "insert_s": time.perf_counter() - started, "experiment": experiment.key}


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres():
    """A PostgreSQL 15 server in a temporary directory (initdb as the postgres user);
    yields its URL, or None with the reason when it cannot be started."""
    if not (PG_BIN / "initdb").exists():
        yield None, f"{PG_BIN}/initdb not found: PostgreSQL 15 is not installed"
        return
    if shutil.which("runuser") is None or os.geteuid() != 0:
        yield None, "needs root and runuser to run initdb as the postgres user"
        return
    directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    shutil.chown(directory, "postgres", "postgres")
    port = free_port()
    data = directory / "data"

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)

    try:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(directory / "log"),
            "-w",
            "-o",
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c shared_buffers=256MB -c work_mem=64MB",
            "start",
        )
    except subprocess.CalledProcessError as error:
        yield None, f"could not start PostgreSQL: {error.stderr.decode(errors='replace')[-300:]}"
        shutil.rmtree(directory, ignore_errors=True)
        return
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres", ""
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)
