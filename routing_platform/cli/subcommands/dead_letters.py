"""`routing dead-letters`: list, replay or drop the call records the drain could not write."""

from __future__ import annotations

import datetime as dt

import django_rq
from django.core.management.base import CommandError
from redis.exceptions import RedisError

from api import dead_letters
from routing_platform.cli.subcommands._tables import as_json, table

HELP = (
    "Call records that could not be written (dead letters): list them, replay them after "
    "fixing the cause (--replay), or delete them (--drop)."
)
PAYLOAD_PREVIEW_CHARS = 60


def add_arguments(parser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--replay",
        nargs="*",
        metavar="ID",
        help="Write these dead letters again (all when no ID is given); those written leave the list.",
    )
    action.add_argument("--drop", nargs="+", metavar="ID", help="Delete these dead letters.")
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def _connection():
    return django_rq.get_connection("default")


def _when(epoch_s: float) -> str:
    if not epoch_s:
        return "-"
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def handle(command, **options) -> None:
    connection = _connection()
    try:
        if options["replay"] is not None:
            outcome = dead_letters.dead_letters_replay(connection, ids=options["replay"] or None)
            _report_replay(command, outcome, as_json_output=options["json"])
            return
        if options["drop"]:
            dropped = dead_letters.dead_letters_drop(connection, ids=options["drop"])
            missing = sorted(set(options["drop"]) - set(dropped))
            if options["json"]:
                command.stdout.write(as_json({"dropped": dropped, "not_found": missing}))
                return
            command.stdout.write(command.style.SUCCESS(f"{len(dropped)} dead letter(s) deleted."))
            if missing:
                command.stdout.write(command.style.WARNING(f"Not found: {', '.join(missing)}"))
            return
        letters = dead_letters.dead_letters_list(connection)
    except RedisError as err:
        raise CommandError(
            f"Redis is unreachable ({type(err).__name__}): the dead letters live there. Check "
            "REDIS_URL and run it again."
        ) from None
    if options["json"]:
        command.stdout.write(as_json([letter.as_dict() for letter in letters]))
        return
    if not letters:
        command.stdout.write(
            command.style.SUCCESS("No dead letters: every call record was written.")
        )
        return
    command.stdout.write(
        table(
            ("id", "failed at (UTC)", "attempts", "error", "payload"),
            [
                [
                    letter.id,
                    _when(letter.failed_at),
                    letter.attempts,
                    letter.error[:80],
                    letter.payload[:PAYLOAD_PREVIEW_CHARS],
                ]
                for letter in letters
            ],
        )
    )
    command.stdout.write(
        f"{len(letters)} dead letter(s). Fix the cause, then `routing dead-letters --replay`; "
        "`--json` prints the whole payloads."
    )


def _report_replay(command, outcome, *, as_json_output: bool) -> None:
    if as_json_output:
        command.stdout.write(as_json({"recorded": outcome.recorded, "failed": outcome.failed}))
        return
    command.stdout.write(
        command.style.SUCCESS(f"{len(outcome.recorded)} dead letter(s) written and removed.")
    )
    for letter_id, error in outcome.failed.items():
        command.stdout.write(command.style.ERROR(f"{letter_id} still refused: {error}"))
