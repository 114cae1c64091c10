"""`routing reconcile`: settle routed calls whose RQ job is gone (for cron)."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

HELP = "Record queued/running calls whose RQ job failed for good or vanished as errors (cron)."

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
    from redis.exceptions import RedisError

    from experiments.services import routed_calls_reconcile

    older_than = options["older_than"]
    if not older_than >= 0:  # also refuses NaN
        raise CommandError("--older-than must be 0 seconds or more.")
    try:
        counts = routed_calls_reconcile(older_than_s=older_than)
    except RedisError as err:
        raise CommandError(
            f"Redis is unreachable ({type(err).__name__}): the jobs' state cannot be read, so "
            "nothing was changed. Check REDIS_URL and run it again when Redis is back."
        ) from None
    if options["json"]:
        command.stdout.write(json.dumps(counts))
        return
    settled = counts["failed"] + counts["lost"]
    command.stdout.write(
        f"{settled} call(s) recorded as errors ({counts['failed']} whose job failed for good, "
        f"{counts['lost']} whose job no longer exists); {counts['pending']} still pending "
        "with a worker."
    )
