"""`routing export`: the experiment winner report or the analytics report, as JSON files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from experiments.models import Arm, ArmRollup, Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    experiment = Experiment.objects.create(
        key="smart-vs-council", name="Smart vs council", status="running"
    )
    Arm.objects.create(
        experiment=experiment, key="council", strategy="original_council", is_control=True
    )
    Arm.objects.create(experiment=experiment, key="smart", strategy="smart_routing", position=1)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for arm_key, cost in (("council", 0.01), ("smart", 0.002)):
        ArmRollup.objects.create(
            bucket_start=hour,
            experiment_key=experiment.key,
            arm_key=arm_key,
            status="success",
            n=50,
            cost_usd_sum=cost * 50,
            cost_usd_sumsq=(cost**2) * 50 * 1.1,
        )
    return experiment


def run(*args) -> str:
    out = StringIO()
    call_command("routing", "export", *args, stdout=out)
    return out.getvalue()


def test_experiment_report_is_written_with_its_decision(experiment, tmp_path):
    """--experiment writes the versioned winner report and prints the decision."""
    target = tmp_path / "report.json"
    output = run("--experiment", experiment.key, "--out", str(target))
    data = json.loads(target.read_text())
    assert data["schema_version"] == 2
    assert data["settings"]["key"] == experiment.key
    assert {arm["key"] for arm in data["arms"]} == {"council", "smart"}
    assert f"decision: {data['decision']['status']}" in output


def test_json_summary_for_scripts(experiment, tmp_path):
    """--json prints one JSON object naming the file, kind and decision."""
    target = tmp_path / "report.json"
    summary = json.loads(run("--experiment", experiment.key, "--out", str(target), "--json"))
    assert summary["path"] == str(target.resolve())
    assert summary["kind"] == "experiment-report"
    assert summary["decision"] in {"winner", "no winner yet", "guardrail failed", "invalid"}


def test_unknown_experiment_names_the_known_ones(experiment, tmp_path):
    """A wrong key is a CommandError listing the keys that exist; nothing is written."""
    target = tmp_path / "report.json"
    with pytest.raises(CommandError, match="No experiment with key 'nope'.*smart-vs-council"):
        run("--experiment", "nope", "--out", str(target))
    assert not target.exists()


@pytest.mark.parametrize("with_experiment", [True, False])
def test_unwritable_paths_are_command_errors(experiment, tmp_path, with_experiment):
    """A missing folder or a directory as --out is a CommandError saying what to do."""
    extra = ["--experiment", experiment.key] if with_experiment else []
    with pytest.raises(CommandError, match="does not exist|folder|directory|Choose"):
        run(*extra, "--out", str(tmp_path / "missing" / "report.json"))
    with pytest.raises(CommandError, match="directory|file path|Choose"):
        run(*extra, "--out", str(tmp_path))


def test_without_experiment_writes_the_analytics_report(experiment, tmp_path):
    """No --experiment: the guide's analytics.export_report(path) file."""
    target = tmp_path / "analytics.json"
    summary = json.loads(run("--out", str(target), "--json"))
    assert summary["kind"] == "analytics-report"
    data = json.loads(target.read_text())
    assert "schema_version" in data
