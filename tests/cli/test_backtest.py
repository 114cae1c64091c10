"""`routing backtest` and `routing train-router`: reports, output files, clear errors,
the router-file round trip, training from shadow-mode pairs, and the shared data."""

from __future__ import annotations

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from routing_platform.engine.learned import ARTIFACT_VERSION
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows, write_csv

MODELS = ("--strong", STRONG, "--weak", WEAK)

GPT4 = "gpt-4-1106-preview"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("routing", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def bench(tmp_path):
    return write_csv(tmp_path / "bench.csv", synthetic_rows(90))


def test_backtest_prints_router_and_baselines_and_writes_outputs(bench, tmp_path):
    """The table lists the router and both baselines; scores, JSON and plot are written."""
    scores, report, plot = tmp_path / "scores.csv", tmp_path / "report.json", tmp_path / "c.html"
    out, err = run(
        "backtest",
        "--dataset",
        str(bench),
        *MODELS,
        "--router",
        "learned",
        "--scores-out",
        str(scores),
        "--json-out",
        str(report),
        "--plot-out",
        str(plot),
    )
    for name in ("learned", "random", "length", "APGR", "CPT50", "savings@95%"):
        assert name in out
    assert "[####" in err  # the progress bar
    with scores.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 90 and rows[0]["sample_id"] == "s0000"
    data = json.loads(report.read_text())
    assert [router["name"] for router in data["routers"]] == ["learned", "random", "length"]
    assert data["cross_validation"]["folds"] == 5
    assert "Plotly.newPlot" in plot.read_text()


def test_backtest_json_on_stdout(bench):
    """--json prints the machine-readable report and nothing else on stdout."""
    out, _ = run(
        "backtest",
        "--dataset",
        str(bench),
        *MODELS,
        "--json",
        "--no-progress",
    )
    data = json.loads(out)
    assert data["routers"][0]["name"] == "heuristic"
    assert 0 <= data["routers"][0]["cpt50"] <= 1


def test_malformed_file_names_row_and_column(tmp_path):
    """A bad cell is a CommandError naming the row and the column."""
    bad = tmp_path / "bad.csv"
    bad.write_text(f"prompt,{STRONG},{WEAK}\nq1,1,0\nq2,1,maybe\n")
    with pytest.raises(CommandError, match=f"row 2 \\(line 3\\), column '{WEAK}'"):
        run("backtest", "--dataset", str(bad), *MODELS)


def test_unknown_model_and_missing_file_are_command_errors(bench, tmp_path):
    """Typos in model names or paths say what exists / what is missing."""
    with pytest.raises(CommandError, match="model columns found"):
        run("backtest", "--dataset", str(bench), "--strong", "gpt-5", "--weak", WEAK)
    with pytest.raises(CommandError, match="no such file"):
        run("backtest", "--dataset", str(tmp_path / "x.csv"), *MODELS)
    with pytest.raises(CommandError, match="no such learned-router file"):
        run(
            "backtest",
            "--dataset",
            str(bench),
            *MODELS,
            "--router-file",
            str(tmp_path / "absent.json"),
        )


def test_train_router_then_backtest_the_file(bench, tmp_path):
    """train-router saves a calibrated artifact that backtest --router-file evaluates."""
    model = tmp_path / "router.json"
    out, _ = run(
        "train-router",
        "--dataset",
        str(bench),
        *MODELS,
        "--out",
        str(model),
        "--target-strong-share",
        "0.3",
        "--no-progress",
    )
    assert "cross-validated" in out and "router saved" in out
    artifact = json.loads(model.read_text())
    assert artifact["version"] == ARTIFACT_VERSION
    assert artifact["feature_version"] == 4  # the default feature set (one pass, bounded)
    assert artifact["metadata"]["calibration"]["target"] == "strong_share"
    out, _ = run(
        "backtest",
        "--dataset",
        str(bench),
        *MODELS,
        "--router-file",
        str(model),
        "--no-progress",
    )
    assert "router.json" in out and "at its threshold" in out


def test_cascade_router_file_needs_cascade_mode(bench, tmp_path):
    """A cascade-trained router cannot be backtested in route mode."""
    model = tmp_path / "cascade.json"
    run(
        "train-router",
        "--dataset",
        str(bench),
        *MODELS,
        "--mode",
        "cascade",
        "--out",
        str(model),
        "--no-progress",
    )
    with pytest.raises(CommandError, match="--mode cascade"):
        run(
            "backtest",
            "--dataset",
            str(bench),
            *MODELS,
            "--router-file",
            str(model),
        )
    out, _ = run(
        "backtest",
        "--dataset",
        str(bench),
        *MODELS,
        "--router-file",
        str(model),
        "--mode",
        "cascade",
        "--no-progress",
    )
    assert "cascade.json" in out


def test_train_router_needs_models_for_csv(bench, tmp_path):
    """CSV training names the two model columns."""
    with pytest.raises(CommandError, match="--strong MODEL --weak MODEL"):
        run("train-router", "--dataset", str(bench), "--out", str(tmp_path / "r.json"))


@pytest.mark.django_db
def test_train_router_from_shadow_pairs(tmp_path):
    """--from-calls learns from an experiment's recorded pairs (control arm = strong)."""
    from tests.experiments.test_selectors_training import make_pairs

    experiment = make_pairs(30)
    model = tmp_path / "calls.json"
    out, _ = run(
        "train-router",
        "--from-calls",
        "--experiment",
        experiment.key,
        "--out",
        str(model),
        "--no-progress",
        "--json",
    )
    summary = json.loads(out)
    assert summary["rows"] == 30
    assert summary["strong"] == "original_council" and summary["weak"] == "smart_routing"
    assert json.loads(model.read_text())["metadata"]["trained_on"] == [
        f"experiment {experiment.key} shadow pairs"
    ]


@pytest.mark.django_db
def test_train_router_from_calls_errors():
    """Unknown experiment, missing key, or too few pairs: each says what to do."""
    from tests.experiments.test_selectors_training import make_pairs

    with pytest.raises(CommandError, match="--experiment KEY"):
        run("train-router", "--from-calls", "--out", "x.json")
    with pytest.raises(CommandError, match="no experiment 'nope'"):
        run("train-router", "--from-calls", "--experiment", "nope", "--out", "x.json")
    experiment = make_pairs(3)
    with pytest.raises(CommandError, match="3 usable shadow pairs"):
        run("train-router", "--from-calls", "--experiment", experiment.key, "--out", "x.json")


def test_shared_gsm8k_backtest_and_training(routellm_dir, tmp_path):
    """On the real GSM8K file: cascade learned router beats both baselines out-of-fold,
    and a trained route-mode router reloads and scores every row."""
    gsm8k = str(routellm_dir / "gsm8k_dev.csv")
    out, _ = run(
        "backtest",
        "--dataset",
        gsm8k,
        "--strong",
        GPT4,
        "--weak",
        MIXTRAL,
        "--router",
        "learned",
        "--mode",
        "cascade",
        "--json",
        "--no-progress",
    )
    routers = {router["name"]: router for router in json.loads(out)["routers"]}
    assert routers["learned"]["apgr"] > routers["length"]["apgr"] > routers["random"]["apgr"]
    assert routers["learned"]["apgr"] > 0.68
    model = tmp_path / "gsm8k.json"
    run(
        "train-router",
        "--dataset",
        gsm8k,
        "--strong",
        GPT4,
        "--weak",
        MIXTRAL,
        "--out",
        str(model),
        "--no-progress",
    )
    scores = tmp_path / "scores.csv"
    run(
        "backtest",
        "--dataset",
        gsm8k,
        "--strong",
        GPT4,
        "--weak",
        MIXTRAL,
        "--router-file",
        str(model),
        "--scores-out",
        str(scores),
        "--no-progress",
    )
    assert len(scores.read_text().splitlines()) == 923 + 1


def test_calibrate_on_the_users_own_prompts(bench, tmp_path):
    """--calibrate-on a prompts-only file sets the threshold to the share asked for there."""
    prompts = tmp_path / "mine.csv"
    rows = synthetic_rows(40, seed=3)
    write_csv(prompts, [{"prompt": row["prompt"]} for row in rows])
    model = tmp_path / "router.json"
    run(
        "train-router",
        "--dataset",
        str(bench),
        *MODELS,
        "--out",
        str(model),
        "--target-strong-share",
        "0.25",
        "--calibrate-on",
        str(prompts),
        "--no-progress",
    )
    from routing_platform.engine.learned import load_router

    router = load_router(model)
    assert router.metadata["calibration"]["rows_from"] == [str(prompts)]
    share = sum(router.prefers_strong(row["prompt"]) for row in rows) / len(rows)
    assert share == pytest.approx(0.25, abs=0.03)
    with pytest.raises(CommandError, match="--target-strong-share"):
        run(
            "train-router",
            "--dataset",
            str(bench),
            *MODELS,
            "--out",
            str(model),
            "--calibrate-on",
            str(prompts),
            "--no-progress",
        )


def test_cli_router_choices_match_the_engine():
    """The command offers exactly the routers the engine can score."""
    from routing_platform.cli.subcommands.backtest import ROUTER_CHOICES
    from routing_platform.engine.quality.routers import ROUTER_NAMES

    assert set(ROUTER_CHOICES) == set(ROUTER_NAMES)


@pytest.mark.django_db
def test_train_router_from_calls_with_a_signal_says_how_many_pairs_it_has():
    """--signal judge on pairs nobody judged yet: how many it has, how many it needs."""
    from tests.experiments.test_selectors_training import make_pairs

    experiment = make_pairs(12)
    with pytest.raises(
        CommandError, match=r"0 usable shadow pairs \(12 skipped .*judge signal.*at least 10"
    ):
        run(
            "train-router",
            "--from-calls",
            "--experiment",
            experiment.key,
            "--signal",
            "judge",
            "--out",
            "x.json",
        )


@pytest.mark.django_db
def test_train_router_learns_from_agreement_labels(tmp_path):
    """--signal agreement labels each pair from the recorded agreement signals."""
    from experiments.models import QualitySignal, RoutedCall
    from tests.experiments.test_selectors_training import make_pairs

    experiment = make_pairs(30)
    for call in RoutedCall.objects.filter(experiment=experiment, is_shadow=False):
        hard = call.request_payload["script"].startswith("Analyse")
        QualitySignal.objects.create(call=call, source="agreement", value=0.4 if hard else 0.95)
    model = tmp_path / "agreement.json"
    out, _ = run(
        "train-router",
        "--from-calls",
        "--experiment",
        experiment.key,
        "--signal",
        "agreement",
        "--out",
        str(model),
        "--no-progress",
        "--json",
    )
    assert json.loads(out)["rows"] == 30
    assert json.loads(model.read_text())["metadata"]["trained_on"] == [
        f"experiment {experiment.key} shadow pairs (agreement)"
    ]
