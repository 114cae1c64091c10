"""`routing prune-calls`: data retention, delete recorded calls older than N days."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from experiments.services.retention import routed_calls_prune

HELP = (
    "Delete recorded calls older than --older-than DAYS (rollups and reports are kept); "
    "--dry-run only counts them."
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--older-than",
        type=int,
        required=True,
        metavar="DAYS",
        help="Delete finished calls created more than this many days ago (at least 1).",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Count the calls that would go; delete nothing."
    )
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def handle(command, **options) -> None:
    try:
        result = routed_calls_prune(
            older_than_days=options["older_than"], dry_run=options["dry_run"]
        )
    except ValidationError as err:
        raise CommandError(" ".join(err.messages)) from err
    if options["json"]:
        command.stdout.write(
            json.dumps(
                {
                    "cutoff": result.cutoff.isoformat(),
                    "matched": result.matched,
                    "deleted": result.deleted,
                    "dry_run": result.dry_run,
                }
            )
        )
        return
    cutoff = f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
    if result.dry_run:
        command.stdout.write(
            f"{result.matched:,} finished calls were created before {cutoff}; "
            "run without --dry-run to delete them."
        )
        return
    command.stdout.write(
        command.style.SUCCESS(f"Deleted {result.deleted:,} calls created before {cutoff}.")
    )
