"""Out-of-process helper of ``test_rq_integration.py`` (run as ``python -m``).

The integration tests run real ``rqworker`` processes, which cannot see pytest-django's
test database (an in-memory SQLite, or a transaction never committed). So those tests
use their own database, given to every process by ``DATABASE_URL``: a SQLite file in a
temporary directory (or a scratch PostgreSQL database when the suite runs on
PostgreSQL). This helper is the only place Django touches that database on the test's
behalf:

- ``setup``: migrate, create a running experiment, write the scenario calls through
  ``routed_call_enqueue`` and print their ids as JSON. Calls of the "bulk" scenario are
  enqueued normally (after commit); the single-call scenarios are written with their job
  held back, so each test enqueues its own job when it is ready.
- ``lock``: hold the routed-call table's write lock until a line arrives on stdin
  (prints ``locked`` once it holds it).
"""

from __future__ import annotations

import json
import os
import sys


def _setup(bulk: int, shadow_share: float, singles: list[str]) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    from experiments import jobs, services

    experiment = services.experiment_create(
        key=f"rq-it-{os.getpid()}",
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
    # Other runs may have left a running experiment on this unit space: stop them.
    from experiments.models import Experiment

    for other in Experiment.objects.filter(status="running", unit_type="request"):
        services.experiment_stop(experiment=other)
    services.experiment_start(experiment=experiment)
    bulk_ids = [
        services.routed_call_enqueue(
            kind="evaluate" if i % 2 else "execute",
            request_payload={"script": f"Script {i}"} if i % 2 else {"text": f"Question {i}?"},
            task_type="analysis",
            unit_id=f"unit-{i}",
            experiment=experiment,
            source="simulate",
            shadow_share=shadow_share,
        ).pk
        for i in range(bulk)
    ]
    held: dict[str, dict] = {}
    original = jobs.enqueue_routed_call
    jobs.enqueue_routed_call = lambda **kwargs: None  # the test enqueues these itself
    try:
        for name in singles:
            call = services.routed_call_enqueue(
                kind="execute",
                request_payload={"text": f"Held call for {name}"},
                unit_id=f"held-{name}",
                experiment=experiment,
                source="simulate",
                shadow_share=0,
            )
            held[name] = {"id": call.pk, "job_id": call.job_id}
    finally:
        jobs.enqueue_routed_call = original
    return {"experiment": experiment.key, "bulk": bulk_ids, "held": held}


def _lock() -> None:
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("LOCK TABLE experiments_routedcall IN ACCESS EXCLUSIVE MODE")
            else:  # SQLite: a write takes the database's write lock until commit
                cursor.execute("UPDATE experiments_routedcall SET attempts = attempts WHERE 0")
                cursor.execute("UPDATE experiments_routedcall SET attempts = attempts")
        print("locked", flush=True)
        sys.stdin.readline()


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_platform.settings")
    import django

    django.setup()
    command = argv[0]
    if command == "setup":
        bulk, shadow_share = int(argv[1]), float(argv[2])
        print(json.dumps(_setup(bulk, shadow_share, argv[3:])), flush=True)
    elif command == "lock":
        _lock()
    else:
        print(f"unknown command {command!r}: use setup or lock", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
