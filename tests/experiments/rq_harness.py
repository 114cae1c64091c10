"""Out-of-process helper of ``test_rq_integration.py`` (run as ``python -m``).

The integration tests run real ``rqworker`` processes, which cannot see pytest-django's
test database (an in-memory SQLite, or a transaction never committed). So those tests
use their own database, given to every process by ``DATABASE_URL``: a SQLite file in a
temporary directory (or a scratch PostgreSQL database when the suite runs on
PostgreSQL). This helper is the only place Django touches that database on the test's
behalf:

- ``setup NAME...``: migrate, create a running experiment, and write one call per name
  through ``routed_call_enqueue(dispatch=False)``: its job is held back, so each test
  enqueues its own job when it is ready (and no test drains another's jobs);
- ``enqueue N SHARE``: write N calls through ``routed_call_enqueue``, whose jobs go to
  the real Redis after each commit (every third call, and SHARE of the others, with a
  shadow twin); print their ids.
- ``lock``: hold the routed-call table's write lock until a line arrives on stdin
  (prints ``locked`` once it holds it).
"""

from __future__ import annotations

import json
import os
import sys


def _experiment():
    from experiments import services
    from experiments.models import Experiment

    experiment = Experiment.objects.filter(key="rq-integration").first()
    if experiment is not None:
        return experiment
    experiment = services.experiment_create(
        key="rq-integration",
        name="RQ integration",
        arms=[
            {
                "key": "original_council",
                "strategy": "original_council",
                "weight": 50,
                "is_control": True,
            },
            {"key": "smart_routing", "strategy": "smart_routing", "weight": 50},
        ],
        unit_type="request",
    )
    services.experiment_start(experiment=experiment)
    return experiment


def _setup(singles: list[str]) -> dict:
    """Migrate, create the experiment, and write one held-back call per scenario name."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from experiments import services

    experiment = _experiment()
    held: dict[str, dict] = {}
    for name in singles:
        call = services.routed_call_enqueue(
            kind="execute",
            request_payload={"text": f"Held call for {name}"},
            unit_id=f"held-{name}",
            experiment=experiment,
            source="simulate",
            shadow_share=0,
            dispatch=False,  # the test enqueues its job when it is ready
        )
        held[name] = {"id": call.pk, "job_id": call.job_id}
    return {"experiment": experiment.key, "held": held}


def _enqueue(count: int, shadow_share: float) -> dict:
    """Write ``count`` calls through the services; their jobs are enqueued on commit."""
    from experiments import services

    experiment = _experiment()
    ids = [
        services.routed_call_enqueue(
            kind="evaluate" if i % 2 else "execute",
            request_payload={"script": f"Script {i}"} if i % 2 else {"text": f"Question {i}?"},
            task_type="analysis",
            unit_id=f"unit-{i}",
            experiment=experiment,
            source="simulate",
            # Every third call gets a twin for sure: the share is a hash of a random key.
            shadow_share=1.0 if i % 3 == 0 else shadow_share,
        ).pk
        for i in range(count)
    ]
    return {"experiment": experiment.key, "ids": ids}


def _lock() -> None:
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # EXCLUSIVE blocks every write to the table but not plain reads (the test
                # watches the row while the worker waits).
                cursor.execute("LOCK TABLE experiments_routedcall IN EXCLUSIVE MODE")
            else:  # SQLite: a write takes the database's write lock until commit
                cursor.execute("UPDATE experiments_routedcall SET attempts = attempts WHERE 0")
                cursor.execute("UPDATE experiments_routedcall SET attempts = attempts")
        print("locked", flush=True)
        sys.stdin.readline()


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    command = argv[0]
    if command == "setup":
        print(json.dumps(_setup(argv[1:])), flush=True)
    elif command == "enqueue":
        print(json.dumps(_enqueue(int(argv[1]), float(argv[2]))), flush=True)
    elif command == "lock":
        _lock()
    else:
        print(f"unknown command {command!r}: use setup or lock", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
