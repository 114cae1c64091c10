"""`routing export`: write a report as JSON.

With ``--experiment KEY``: the experiment's winner report (``experiments.reports``,
versioned, every test's inputs and outputs, recomputable from the file alone). Without
it: the analytics report of the user's guide (``analytics.export_report(path)``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import CommandError

from experiments.models import Experiment
from experiments.reports import report_export_json
from routing_platform.routing.analytics import ReportExportError, analytics

HELP = (
    "Write a JSON report: an experiment's winner report (--experiment KEY) or the analytics report."
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--experiment",
        metavar="KEY",
        help="Experiment key: write its winner report (decision, per-arm statistics, tests). "
        "Without it, the analytics report is written.",
    )
    parser.add_argument(
        "--out", required=True, metavar="PATH", help="File to write, e.g. report.json."
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print a JSON summary (path, kind, decision) for scripts.",
    )


def _target(path: str) -> Path:
    """The absolute path to write, or CommandError saying why it cannot be written."""
    if not path or not path.strip():
        raise CommandError("Give a file path with --out, e.g. --out report.json.")
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise CommandError(
            f"--out {path} is a directory; give a file path such as {target / 'report.json'}."
        )
    if not target.parent.is_dir():
        raise CommandError(
            f"The folder {target.parent} does not exist; create it or choose another --out path."
        )
    if not os.access(target.parent, os.W_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise CommandError(
            f"Cannot write {target}: permission denied. Choose a writable --out path."
        )
    return target


def _write_atomically(target: Path, text: str) -> None:
    """Write beside the target, then rename: the file appears whole or not at all."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except OSError as error:
        raise CommandError(
            f"Cannot write {target}: {error.strerror or error}. Choose another --out path."
        ) from error


def handle(command, **options) -> None:
    key = options.get("experiment")
    if key:
        target = _target(options["out"])
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            known = list(Experiment.objects.order_by("key").values_list("key", flat=True)[:20])
            hint = (
                f" Known experiments: {', '.join(known)}."
                if known
                else " There are no experiments yet."
            )
            raise CommandError(f"No experiment with key {key!r}.{hint}")
        text = report_export_json(experiment=experiment)
        _write_atomically(target, text + "\n")
        report = json.loads(text)
        decision = report["decision"]
        summary = {
            "path": str(target),
            "kind": "experiment-report",
            "experiment": key,
            "schema_version": report["schema_version"],
            "decision": decision["status"],
            "arm": decision["arm"],
        }
        if options["json"]:
            command.stdout.write(json.dumps(summary))
            return
        verdict = decision["status"] + (f": {decision['arm']}" if decision["arm"] else "")
        command.stdout.write(command.style.SUCCESS(f"Wrote the report of {key!r} to {target}"))
        command.stdout.write(f"  decision: {verdict}")
        for reason in decision["reasons"]:
            command.stdout.write(f"  - {reason}")
        return

    try:
        written = analytics.export_report(options["out"])
    except ReportExportError as error:
        raise CommandError(str(error)) from error
    except OSError as error:
        raise CommandError(
            f"Cannot write {options['out']}: {error}. Choose another --out path."
        ) from error
    if options["json"]:
        command.stdout.write(json.dumps({"path": str(written), "kind": "analytics-report"}))
        return
    command.stdout.write(command.style.SUCCESS(f"Wrote the analytics report to {written}"))
