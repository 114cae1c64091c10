"""`make bench`: run every `benchmarks/bench_*.py` in its own process and rewrite BENCHMARKS.md.

Each benchmark module defines ``TITLE`` and ``run(quick: bool = False) -> list[dict]``, each
dict ``{"metric", "value", "unit", "target", "met", "notes"}``. A benchmark runs in a fresh
subprocess (no state shared with another one; a crash or a hang costs only that one); its
figures, or its failure, go to ``benchmarks/results/<name>.json``. BENCHMARKS.md is then
rendered from every result file there, so ``--only NAME`` refreshes one section and keeps
the others.

    python -m benchmarks.run                 # all, full size
    python -m benchmarks.run --quick         # all, small sizes (a smoke run)
    python -m benchmarks.run --only routing_decision --only assignment
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import importlib
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FIGURE_KEYS = {"metric": str, "value": (int, float), "unit": str, "target": str, "notes": str}
# Result files written by suites outside `make bench` (benchmarks/chaos.py: `make chaos`),
# kept in BENCHMARKS.md when the benchmarks rewrite it.
OTHER_SUITES = {"chaos"}


class FigureError(ValueError):
    """A benchmark returned something that is not a list of figure dicts."""


def discover(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    """``{"routing_decision": .../bench_routing_decision.py, ...}``, sorted by name."""
    return {path.stem.removeprefix("bench_"): path for path in sorted(bench_dir.glob("bench_*.py"))}


def validate_figures(figures: object) -> list[dict]:
    """The figures as plain JSON-able dicts; a missing key or a wrong type is a FigureError."""
    if not isinstance(figures, list) or not figures:
        raise FigureError(f"run() must return a non-empty list of dicts, got {figures!r:.200}")
    clean = []
    for index, figure in enumerate(figures):
        if not isinstance(figure, dict):
            raise FigureError(f"figure {index} is not a dict: {figure!r:.200}")
        for key, kind in FIGURE_KEYS.items():
            if not isinstance(figure.get(key), kind) or isinstance(figure.get(key), bool):
                raise FigureError(
                    f"figure {index} ({figure.get('metric')!r}): {key!r} missing or wrong type"
                )
        if figure.get("met") not in (True, False, None):
            raise FigureError(
                f"figure {index} ({figure['metric']!r}): 'met' must be true, false or null"
            )
        value = float(figure["value"])
        if math.isnan(value) or math.isinf(value):
            raise FigureError(f"figure {index} ({figure['metric']!r}): value is {value}")
        clean.append({key: figure[key] for key in (*FIGURE_KEYS, "met")} | {"value": value})
    return clean


def read_title(path: Path) -> str:
    """TITLE read from the source without importing it, so a crashed benchmark keeps its title."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return path.stem
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "TITLE" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    return path.stem


def load_module(path: Path):
    """Import a benchmark by module name when it lives in this package (so it can import its
    siblings), else from its file (tests use a temporary directory)."""
    if path.parent == BENCH_DIR:
        return importlib.import_module(f"benchmarks.{path.stem}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child_main(path: Path, quick: bool, out: Path) -> int:
    """Inside the subprocess: run one benchmark and write its title and figures to ``out``."""
    sys.path.insert(0, str(REPO_ROOT))
    module = load_module(path)
    figures = validate_figures(module.run(quick=quick))
    out.write_text(json.dumps({"title": str(module.TITLE), "figures": figures}))
    return 0


def machine() -> dict:
    """CPU model, cores, memory, OS and Python of this machine."""
    cpu = platform.processor() or platform.machine()
    memory_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:  # not Linux
        with contextlib.suppress(ValueError, OSError, AttributeError):
            memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def run_one(name: str, path: Path, *, quick: bool, timeout_s: float, command: str) -> dict:
    """Run one benchmark in a subprocess; a crash, bad figures or a timeout become a failure."""
    started = time.monotonic()
    result = {
        "name": name,
        "title": read_title(path),
        "status": "ok",
        "error": "",
        "figures": [],
        "quick": quick,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "commit": git_commit(),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, "-m", "benchmarks.run", "--child", str(path), "--out", str(out)]
        if quick:
            argv.append("--quick")
        try:
            proc = subprocess.run(
                argv,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except subprocess.TimeoutExpired:
            result.update(status="failed", error=f"timed out after {timeout_s:.0f} s")
        else:
            if proc.returncode == 0 and out.exists():
                result.update(json.loads(out.read_text()))
            else:
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                result.update(status="failed", error=f"exit code {proc.returncode}\n{tail}")
    result["duration_s"] = round(time.monotonic() - started, 1)
    return result


def _fmt_value(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(results: list[dict]) -> str:
    """BENCHMARKS.md: the machine, the date and the command, then each figure against its target."""
    lines = ["# Benchmarks", ""]
    lines.append(
        "Written by `make bench` (`python -m benchmarks.run`); do not edit by hand. Targets and "
        "their anchors: `../shared/docs/TARGETS.md`. Each figure is a median over several runs "
        "on a shared, noisy 2-core machine; speeds are ratios against a baseline measured in the "
        "same run where the target says so."
    )
    lines.append("")
    if not results:
        lines += ["No benchmark has been run yet.", ""]
        return "\n".join(lines)
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results}
    for machine_json in sorted(machines):
        info = json.loads(machine_json)
        lines.append(
            f"**Machine**: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB RAM, "
            f"{info['os']}, Python {info['python']}."
        )
    lines.append("")
    lines += ["| benchmark | status | targets met | run | command |", "|---|---|---|---|---|"]
    for r in results:
        judged = [f for f in r["figures"] if f["met"] is not None]
        met = sum(1 for f in judged if f["met"])
        status = "ok" if r["status"] == "ok" else "**FAILED**"
        quick = " (quick)" if r.get("quick") else ""
        lines.append(
            f"| [{_cell(r['title'])}](#{r['name']}) | {status} | {met} / {len(judged)} | "
            f"{r['date']}{quick}, {r.get('duration_s', '?')} s, `{r.get('commit', '')}` | "
            f"`{_cell(r['command'])}` |"
        )
    lines.append("")
    for r in results:
        lines += [f'<a id="{r["name"]}"></a>', f"## {r['title']}", ""]
        source = r.get("source") or f"benchmarks/bench_{r['name']}.py"
        lines.append(
            f"`{source}`, run {r['date']}"
            + (" with `--quick` (small sizes: not the real figure)" if r.get("quick") else "")
            + f" by `{r['command']}`."
        )
        lines.append("")
        if r["status"] != "ok":
            lines += ["**Failed**:", "", "```", r["error"], "```", ""]
            continue
        lines += ["| metric | value | target | met | notes |", "|---|---|---|---|---|"]
        for f in r["figures"]:
            verdict = {True: "met", False: "**missed**", None: "n/a"}[f["met"]]
            lines.append(
                f"| {_cell(f['metric'])} | {_fmt_value(f['value'])} {_cell(f['unit'])} | "
                f"{_cell(f['target'])} | {verdict} | {_cell(f['notes'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def load_results(results_dir: Path, names: set[str] | None = None) -> list[dict]:
    """Every stored result (only those of benchmarks that still exist, when names is given)."""
    results = []
    for path in sorted(results_dir.glob("*.json")):
        if names is not None and path.stem not in names:
            continue
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (bench_NAME.py); repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds one benchmark may take (default 1800)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--bench-dir", type=Path, default=BENCH_DIR, help=argparse.SUPPRESS)
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--markdown", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help=argparse.SUPPRESS
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return child_main(args.child, args.quick, args.out)

    available = discover(args.bench_dir)
    if args.list:
        for name, path in available.items():
            print(f"{name:30} {path.relative_to(args.bench_dir.parent)}")
        return 0
    selected = available
    if args.only:
        unknown = sorted(set(args.only) - set(available))
        if unknown:
            parser.error(
                f"no benchmark named {', '.join(unknown)}; choose from: {', '.join(available)}"
            )
        selected = {name: available[name] for name in args.only}
    if not selected:
        print(f"No benchmarks/bench_*.py found in {args.bench_dir}.", file=sys.stderr)
        return 1

    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.run", shlex.join(given)]).strip()
    args.results_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, path in selected.items():
        print(f"== {name} ...", flush=True)
        result = run_one(name, path, quick=args.quick, timeout_s=args.timeout, command=command)
        (args.results_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        if result["status"] != "ok":
            failed.append(name)
            print(f"   FAILED after {result['duration_s']} s: {result['error']}", flush=True)
            continue
        for f in result["figures"]:
            verdict = {True: "met", False: "MISSED", None: "-"}[f["met"]]
            print(
                f"   {f['metric']}: {_fmt_value(f['value'])} {f['unit']} "
                f"(target {f['target']}: {verdict})",
                flush=True,
            )
    args.markdown.write_text(
        render_markdown(load_results(args.results_dir, set(available) | OTHER_SUITES))
    )
    print(f"Wrote {args.markdown}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
