"""`routing reconcile`: settle routed calls whose RQ job is gone (run them again, or record
them as errors), and the call records waiting in Redis (for cron)."""

from __future__ import annotations

import json

import django_rq
from django.core.management.base import CommandError
from redis.exceptions import RedisError

from api.jobs import call_records_drain
from api.recording import records_backlog
from experiments.services import routed_calls_reconcile

HELP = (
    "Settle queued/running calls whose RQ job is gone: run again those whose job vanished "
    "(while they have runs left), record the others as errors; write the call records "
    "waiting in Redis, and report them and the dead letters (cron)."
)

DEFAULT_OLDER_THAN_S = 600.0


def add_arguments(parser) -> None:
    parser.add_argument(
        "--older-than",
        type=float,
        default=DEFAULT_OLDER_THAN_S,
        metavar="SECONDS",
        help=f"Only calls created this long ago or earlier (default {DEFAULT_OLDER_THAN_S:.0f} s: "
        "a queued call younger than that may simply be waiting for a worker).",
    )
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def handle(command, **options) -> None:
    older_than = options["older_than"]
    if not older_than >= 0:  # also refuses NaN
        raise CommandError("--older-than must be 0 seconds or more.")
    try:
        counts = routed_calls_reconcile(older_than_s=older_than)
        connection = django_rq.get_connection("default")
        counts["records_written"] = call_records_drain(connection=connection)
        records = records_backlog(connection).as_dict()
    except RedisError as err:
        raise CommandError(
            f"Redis is unreachable ({type(err).__name__}): the jobs' state cannot be read, so "
            "nothing was changed. Check REDIS_URL and run it again when Redis is back."
        ) from None
    if options["json"]:
        command.stdout.write(json.dumps({**counts, "records": records}))
        return
    settled = counts["failed"] + counts["lost"]
    command.stdout.write(
        f"{settled} call(s) recorded as errors ({counts['failed']} whose job failed for good, "
        f"{counts['lost']} whose job was lost after its last run); {counts['requeued']} "
        f"whose job was lost enqueued again; {counts['pending']} still pending with a worker."
    )
    oldest = records["oldest_age_s"]
    command.stdout.write(
        f"Call records written from Redis: {counts['records_written']}; still waiting: "
        f"{records['pending']}"
        + (f" (oldest {oldest:.0f} s)" if oldest is not None else "")
        + f"; dead letters: {records['dead_letters']}"
        + (" (see `routing dead-letters`)." if records["dead_letters"] else ".")
    )
