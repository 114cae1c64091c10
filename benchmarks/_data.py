"""Bulk data shared by the Django benchmarks (winner report, dashboard): a two-arm
experiment with 1,000,000 routed calls over 14 days, inserted fast, and a throw-away
PostgreSQL 15 server.

One generator for both benchmarks, so they measure the same data. ``insert_calls(calls)``
creates the running experiment ``bench`` (council vs smart, 50/50, 100,000 assigned
units) and the calls (70% evaluations, 5 task types, 3 providers, 15% escalations on the
smart arm, ~1% errors, 2% shadow pairs) spread uniformly over the last ``DAYS`` days;
then call ``experiments.rollups.rollups_rebuild()``.
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
    # Sorted: ids grow with time, as in production, so the time indexes fill in order
    # (random-order inserts into a dozen B-trees dominated the SQLite load).
    seconds = np.sort(rng.uniform(0, DAYS * 86400 - 1, calls))
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

    import numpy as np

    vendor = connection.vendor
    shadow_at = np.flatnonzero(data["shadow"])
    # Every primary call, then the shadow twins of the sampled ones (the other arm).
    index = np.concatenate([np.arange(calls), shadow_at])
    is_shadow = np.concatenate([np.zeros(calls, dtype=bool), np.ones(shadow_at.size, dtype=bool)])
    ids = np.arange(1, index.size + 1)
    paired = np.full(index.size, None, dtype=object)
    paired[shadow_at] = calls + 1 + np.arange(shadow_at.size)
    paired[calls:] = shadow_at + 1
    arm = np.where(is_shadow, 1 - data["arm"][index], data["arm"][index])
    tier = np.where(arm == 1, data["tier"][index], 2)
    provider = data["provider"][index]
    error = data["error"][index]
    when = np.datetime64(data["start"].replace(tzinfo=None), "us") + (
        data["seconds"][index] * 1e6
    ).astype("timedelta64[us]")
    when_text = np.char.replace(np.datetime_as_string(when, unit="us"), "T", " ")
    if vendor == "postgresql":
        when_text = np.char.add(when_text, "+00")

    def text(values) -> list:
        return [str(value) for value in values]

    def nullable(values, missing) -> list:
        return [None if gone else float(value) for value, gone in zip(values, missing, strict=True)]

    model_names = np.array([MODELS[(t, p)] for t in TIER for p in PROVIDERS])
    columns_data = {
        "id": ids.tolist(),
        "idempotency_key": text(np.char.add("k", ids.astype(str))),
        "kind": np.where(data["kind"][index], "evaluate", "execute").tolist(),
        "source": np.where(is_shadow, "shadow", "sdk").tolist(),
        "status": np.where(error, "error", "success").tolist(),
        "experiment_id": [experiment.pk] * index.size,
        "arm_id": np.where(arm == 1, arms[1].pk, arms[0].pk).tolist(),
        "phase_id": [phase.pk] * index.size,
        "unit_id": text(np.char.add("u", data["unit"][index].astype(str))),
        "strategy": np.where(arm == 1, "smart_routing", "original_council").tolist(),
        "is_shadow": is_shadow.tolist(),
        "paired_call_id": paired.tolist(),
        "task_type": np.array(TASKS)[data["task"][index]].tolist(),
        "complexity": np.array(COMPLEXITY)[data["complexity"][index]].tolist(),
        "tier": np.array(TIER)[tier].tolist(),
        "model": model_names[tier * len(PROVIDERS) + provider].tolist(),
        "provider": np.array(PROVIDERS)[provider].tolist(),
        "escalated": (data["escalated"][index] & (arm == 1)).tolist(),
        "confidence": nullable(data["confidence"][index], error),
        "input_tokens": [400] * index.size,
        "output_tokens": [250] * index.size,
        "cost_usd": text(np.char.mod("%.10f", data["cost"][index])),
        "baseline_cost_usd": ["0.0120000000"] * index.size,
        "latency_ms": nullable(data["latency"][index], error),
        "final_score": nullable(data["quality"][index], error),
        "created_at": when_text.tolist(),
        "completed_at": when_text.tolist(),
        "attempts": [1] * index.size,
    }
    fields = list(RoutedCall._meta.concrete_fields)
    columns = [f.column for f in fields]
    for f in fields:
        if f.column in columns_data:
            continue
        value = f.get_default()
        if f.get_internal_type() == "JSONField":
            value = json.dumps(value)
        columns_data[f.column] = [value] * index.size
    total = int(index.size)

    def rows():
        return zip(*(columns_data[column] for column in columns), strict=True)

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
            cursor.execute("PRAGMA cache_size = -262144")  # 256 MiB for the index B-trees
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
