"""`python manage.py routing <subcommand>`: the platform's command line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing_platform.cli.subcommands import discover


class Command(BaseCommand):
    help = (
        "Smart-routing platform: status, cost, dashboard, alerts, experiments, "
        "simulation, statistics, backtests and exports. "
        "Run `manage.py routing <subcommand> --help` for each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="subcommand", metavar="SUBCOMMAND", parser_class=type(parser)
        )
        subparsers.required = False
        for name, module in discover().items():
            sub = subparsers.add_parser(
                name,
                help=module.HELP,
                description=module.HELP,
                called_from_command_line=getattr(parser, "called_from_command_line", None),
            )
            module.add_arguments(sub)

    def handle(self, *args, **options):
        name = options.pop("subcommand", None)
        commands = discover()
        if not name:
            raise CommandError(
                "Name a subcommand: " + ", ".join(commands) + " (e.g. `manage.py routing status`)."
            )
        return commands[name].handle(self, **options)
