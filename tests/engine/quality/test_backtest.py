"""Backtests: routers against baselines, per eval set, cascade mode, the plot."""

from __future__ import annotations

import numpy as np
import pytest

from routing_platform.engine.quality.backtest import operating_point, run_backtest
from routing_platform.engine.quality.dataset import DatasetError, load_dataset
from routing_platform.engine.quality.plot import write_curve_html
from routing_platform.engine.quality.routers import heuristic_score, router_scores
from routing_platform.engine.quality.training import train_router
from tests.engine.quality.conftest import STRONG, WEAK


@pytest.fixture
def dataset(synthetic_csv):
    return load_dataset(synthetic_csv)


def test_report_has_router_and_baselines(dataset):
    """The asked router comes first, then random and length, each with every metric."""
    report = run_backtest(dataset, strong=STRONG, weak=WEAK, routers=["heuristic"])
    names = [result.name for result in report.results]
    assert names == ["heuristic", "random", "length"]
    data = report.as_dict()
    for router in data["routers"]:
        for key in ("apgr", "cpt50", "cpt80", "strong_share_at_95", "savings_at_95"):
            assert np.isfinite(router[key])
    assert data["routers"][0]["operating_point"]["threshold"] == 0.65
    assert set(data["routers"][0]["by_eval"]) == {"gsm8k", "mmlu"}


def test_learned_router_is_scored_out_of_fold_and_beats_random(dataset):
    """On data with a learnable pattern the cross-validated learned router wins."""
    report = run_backtest(dataset, strong=STRONG, weak=WEAK, routers=["learned"], n_folds=5)
    assert report.result("learned").metrics["apgr"] > report.result("random").metrics["apgr"]
    assert report.result("learned").metrics["apgr"] > 0.6


def test_cascade_reads_answers_and_needs_them(dataset, tmp_path):
    """Cascade mode uses the weak answer; a file without answers is refused clearly."""
    report = run_backtest(dataset, strong=STRONG, weak=WEAK, routers=["learned"], mode="cascade")
    # The synthetic weak answer says outright when it is wrong.
    assert report.result("learned").metrics["apgr"] > 0.9
    no_answers = tmp_path / "plain.csv"
    no_answers.write_text(
        f"prompt,{STRONG},{WEAK}\n" + "".join(f"q{i},1,{i % 2}\n" for i in range(20))
    )
    with pytest.raises(DatasetError, match="model_response"):
        run_backtest(load_dataset(no_answers), strong=STRONG, weak=WEAK, mode="cascade")


def test_cascade_pays_the_weak_call_on_every_row(dataset):
    """Same ranking, lower savings in cascade mode than in route mode."""
    route = run_backtest(dataset, strong=STRONG, weak=WEAK, routers=["length"], baselines=())
    cascade = run_backtest(
        dataset, strong=STRONG, weak=WEAK, routers=["length"], mode="cascade", baselines=()
    )
    assert route.results[0].metrics["apgr"] == cascade.results[0].metrics["apgr"]
    assert cascade.results[0].metrics["savings_at_95"] < route.results[0].metrics["savings_at_95"]


def test_router_file_scores_every_row(dataset):
    """A trained artifact is evaluated as-is, with its threshold's operating point."""
    router = train_router(dataset.prompts, dataset.score(STRONG), dataset.score(WEAK))
    router = router.calibrated(router.scores(dataset.prompts), target_strong_share=0.4)
    report = run_backtest(
        dataset, strong=STRONG, weak=WEAK, routers=(), router_file=router, router_file_name="mine"
    )
    mine = report.result("mine")
    assert mine.operating_point["strong_share"] == pytest.approx(0.4, abs=0.01)
    assert len(mine.scores) == len(dataset)


def test_same_model_twice_is_refused(dataset):
    """Strong and weak must differ."""
    with pytest.raises(DatasetError, match="same model"):
        run_backtest(dataset, strong=STRONG, weak=STRONG)


def test_operating_point_by_hand():
    """Two of four rows go strong: quality 0.75, cost (2 x 24.7 + 2 x 0.24) / (4 x 24.7)."""
    point = operating_point(
        np.array([0.9, 0.1, 0.8, 0.2]),
        0.5,
        np.array([1, 1, 1, 0]),
        np.array([0, 1, 0, 0]),
        mode="route",
    )
    assert point["strong_share"] == 0.5
    assert point["quality"] == 0.75
    assert point["savings"] == pytest.approx(1 - (2 * 24.7 + 2 * 0.24) / (4 * 24.7))


def test_heuristic_uses_the_engine_classifier():
    """A longer, harder prompt gets a higher complexity score than a short one."""
    assert heuristic_score("Prove the theorem step by step. " * 30, "reasoning") > heuristic_score(
        "Hi", "analysis"
    )


def test_oracle_and_unknown_router(dataset):
    """The oracle knows the outcome; unknown names list the choices."""
    oracle = router_scores("oracle", dataset, strong=STRONG, weak=WEAK, mode="route")
    np.testing.assert_array_equal(oracle, dataset.score(STRONG) - dataset.score(WEAK))
    with pytest.raises(ValueError, match="heuristic"):
        router_scores("magic", dataset, strong=STRONG, weak=WEAK, mode="route")


def test_plot_is_a_self_contained_page(dataset, tmp_path):
    """The HTML embeds plotly.js (no CDN) and names every router."""
    report = run_backtest(dataset, strong=STRONG, weak=WEAK, routers=["heuristic"])
    html = write_curve_html(report, tmp_path / "curve.html").read_text()
    assert '<script src="http' not in html
    assert "Plotly.newPlot" in html
    for name in ("heuristic", "random", "length"):
        assert name in html


def test_rows_without_outcomes_are_counted_in_the_report(tmp_path):
    """A backtest leaves out rows missing a score and says how many."""
    path = tmp_path / "gaps.csv"
    lines = [f"prompt,{STRONG},{WEAK}"] + [
        f"q{i} {'x' * i},{int(i % 4 != 0)},{(i // 2) % 2}" for i in range(12)
    ]
    lines.append("q-missing,1,")
    path.write_text("\n".join(lines) + "\n")
    report = run_backtest(load_dataset(path), strong=STRONG, weak=WEAK, routers=["length"])
    assert report.as_dict()["rows"] == 12
    assert report.as_dict()["rows_skipped_without_outcome"] == 1
