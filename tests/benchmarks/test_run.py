"""The `make bench` runner: one subprocess per benchmark, failures reported, BENCHMARKS.md rewritten."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.run import FigureError, discover, render_markdown, validate_figures
from tests.conftest import REPO_ROOT

GOOD = """
TITLE = "Good benchmark"
def run(quick=False):
    return [
        {"metric": "p99 latency", "value": 0.12, "unit": "ms", "target": "<= 0.2 ms",
         "met": True, "notes": "median of 5 runs" + (" (quick)" if quick else "")},
        {"metric": "throughput", "value": 4000, "unit": "/s", "target": ">= 5,000 /s",
         "met": False, "notes": "SQLite fsync bound"},
    ]
"""
CRASHES = """
TITLE = "Crashing benchmark"
def run(quick=False):
    raise RuntimeError("upstream fixture refused to start")
"""
BAD_FIGURES = """
TITLE = "Bad figures"
def run(quick=False):
    return [{"metric": "x", "value": "fast"}]
"""


@pytest.fixture
def bench_dir(tmp_path):
    directory = tmp_path / "benches"
    directory.mkdir()
    (directory / "bench_good.py").write_text(GOOD)
    (directory / "bench_crashes.py").write_text(CRASHES)
    (directory / "bench_bad_figures.py").write_text(BAD_FIGURES)
    (directory / "helper.py").write_text("X = 1\n")  # not a benchmark
    return directory


def run_runner(bench_dir, tmp_path, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--bench-dir",
            str(bench_dir),
            "--results-dir",
            str(tmp_path / "results"),
            "--markdown",
            str(tmp_path / "B.md"),
            *args,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_discovers_only_bench_modules(bench_dir):
    """Only files named bench_*.py are benchmarks; the name drops the prefix."""
    assert list(discover(bench_dir)) == ["bad_figures", "crashes", "good"]


def test_the_repository_benchmarks_follow_the_contract():
    """Every committed benchmark defines TITLE and run(quick) (checked without running it)."""
    for name, path in discover().items():
        source = path.read_text()
        assert "TITLE" in source, name
        assert "def run(" in source and "quick" in source, name


def test_keeps_going_after_a_failure_and_writes_every_result(bench_dir, tmp_path):
    """A crash and a malformed result are reported; the good benchmark's figures still land."""
    result = run_runner(bench_dir, tmp_path, "--quick")
    assert result.returncode == 1  # something failed
    results = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")}
    assert set(results) == {"good", "crashes", "bad_figures"}
    assert results["good"]["status"] == "ok"
    assert results["good"]["figures"][0]["notes"].endswith("(quick)")
    assert results["crashes"]["status"] == "failed"
    assert "upstream fixture refused to start" in results["crashes"]["error"]
    assert results["bad_figures"]["status"] == "failed"
    assert "missing or wrong type" in results["bad_figures"]["error"]
    assert "failed: bad_figures, crashes" in result.stdout


def test_markdown_names_machine_command_targets_and_verdicts(bench_dir, tmp_path):
    """BENCHMARKS.md carries the machine, the command, each target and met / missed."""
    run_runner(bench_dir, tmp_path, "--only", "good")
    markdown = (tmp_path / "B.md").read_text()
    assert "**Machine**:" in markdown and "cores" in markdown and "Python 3." in markdown
    assert "`python -m benchmarks.run --bench-dir" in markdown
    assert "| p99 latency | 0.12 ms | <= 0.2 ms | met | median of 5 runs |" in markdown
    assert "| throughput | 4,000 /s | >= 5,000 /s | **missed** | SQLite fsync bound |" in markdown


def test_only_refreshes_one_section_and_keeps_the_others(bench_dir, tmp_path):
    """`--only good` rewrites good's result; the crash recorded earlier stays in the report."""
    run_runner(bench_dir, tmp_path)
    result = run_runner(bench_dir, tmp_path, "--only", "good")
    assert result.returncode == 0
    markdown = (tmp_path / "B.md").read_text()
    assert "## Good benchmark" in markdown and "## Crashing benchmark" in markdown
    assert "**Failed**" in markdown


def test_unknown_benchmark_name_is_a_usage_error(bench_dir, tmp_path):
    """`--only nope` exits 2 and lists the names to choose from."""
    result = run_runner(bench_dir, tmp_path, "--only", "nope")
    assert result.returncode == 2
    assert "no benchmark named nope" in result.stderr and "good" in result.stderr


@pytest.mark.parametrize(
    "figures",
    [
        [],
        [{"metric": "m", "value": 1.0, "unit": "s", "target": "t", "notes": "", "met": "yes"}],
        [
            {
                "metric": "m",
                "value": float("nan"),
                "unit": "s",
                "target": "t",
                "notes": "",
                "met": None,
            }
        ],
        [{"metric": "m", "value": True, "unit": "s", "target": "t", "notes": "", "met": None}],
    ],
)
def test_malformed_figures_are_refused(figures):
    """Empty lists, a non-boolean met, NaN and booleans as values are not figures."""
    with pytest.raises(FigureError):
        validate_figures(figures)


def test_render_with_no_results_says_so():
    """An empty results directory renders a page that says nothing has run."""
    assert "No benchmark has been run yet." in render_markdown([])


CHILD = """
import argparse, json
parser = argparse.ArgumentParser()
parser.add_argument("--child")
parser.add_argument("--calls", type=int)
args = parser.parse_args()
if args.child == "broken":
    raise SystemExit("no database for broken")
print("progress line")
print(json.dumps({"backend": args.child, "calls": args.calls}))
"""


def test_run_child_returns_the_childs_last_json_line(tmp_path):
    """A 1M-call benchmark's child process reports one JSON object as its last stdout line."""
    from benchmarks import run_child

    (tmp_path / "fake_child.py").write_text(CHILD)
    result = run_child("fake_child", "sqlite", 1234, {"PYTHONPATH": str(tmp_path)})
    assert result == {"backend": "sqlite", "calls": 1234}


def test_run_child_failure_names_the_backend_and_the_childs_error(tmp_path):
    """A failing child raises with its backend and the end of its stderr, not a JSON error."""
    from benchmarks import run_child

    (tmp_path / "fake_child.py").write_text(CHILD)
    with pytest.raises(RuntimeError, match=r"broken child failed:(.|\n)*no database for broken"):
        run_child("fake_child", "broken", 1, {"PYTHONPATH": str(tmp_path)})
