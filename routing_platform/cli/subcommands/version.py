"""`routing version`: the platform's version and schema versions."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version

HELP = "Print the platform's version."


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def handle(command, **options) -> None:
    try:
        platform_version = version("routing-platform")
    except PackageNotFoundError:
        platform_version = "unknown (not installed)"
    if options["json"]:
        command.stdout.write(json.dumps({"version": platform_version}))
    else:
        command.stdout.write(f"routing-platform {platform_version}")
