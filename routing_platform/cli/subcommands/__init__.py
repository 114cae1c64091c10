"""Subcommands of `manage.py routing`.

Each module here is one subcommand, named after the module (underscores become
dashes: ``stats_validate.py`` is ``routing stats-validate``). A module defines:

- ``HELP``: one line for ``routing --help``;
- ``add_arguments(parser)``: its arguments, each with ``help``;
- ``handle(command, **options)``: parse, call one service or selector, report through
  ``command.stdout`` / ``command.style``; raise ``CommandError`` with a message that says
  what to do.

They are discovered, so adding a subcommand touches no other file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "handle") and hasattr(module, "add_arguments"):
            found[info.name.replace("_", "-")] = module
    return dict(sorted(found.items()))
