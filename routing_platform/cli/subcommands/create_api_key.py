"""`routing create-api-key`: create an API key and print its token, once."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from api.services import api_key_create, parse_scopes

HELP = "Create an API key for the HTTP API and print its token (shown only this once)."


def add_arguments(parser) -> None:
    parser.add_argument("--name", required=True, help="Who or what uses the key.")
    parser.add_argument(
        "--scopes",
        default="read,write",
        help="Comma-separated scopes: read, write or read,write (default: read,write).",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="Requests per minute for this key (default: API_DEFAULT_RATE_LIMIT_PER_MINUTE).",
    )
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def handle(command, **options) -> None:
    name = (options["name"] or "").strip()
    if not name:
        raise CommandError("--name is empty: name the key after who will use it.")
    if len(name) > 100:
        raise CommandError("--name is longer than 100 characters: shorten it.")
    try:
        scopes = parse_scopes(options["scopes"])
    except ValueError as err:
        raise CommandError(str(err)) from None
    rate_limit = options.get("rate_limit")
    if rate_limit is not None and rate_limit < 1:
        raise CommandError("--rate-limit must be at least 1 request per minute.")
    key, token = api_key_create(name=name, scopes=scopes, rate_limit_per_minute=rate_limit)
    if options["json"]:
        command.stdout.write(
            json.dumps(
                {
                    "id": key.pk,
                    "name": key.name,
                    "prefix": key.prefix,
                    "scopes": key.scopes,
                    "rate_limit_per_minute": key.rate_limit_per_minute,
                    "token": token,
                }
            )
        )
        return
    command.stdout.write(
        command.style.SUCCESS(f"API key {key.name!r} created ({', '.join(scopes)}).")
    )
    command.stdout.write(token)
    command.stdout.write(
        "Store this token now: only its hash is kept, it cannot be shown again. "
        "Send it as `Authorization: Bearer <token>`."
    )
