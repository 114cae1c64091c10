"""`routing backtest`: replay recorded outcomes and measure a router's quality against cost.

    manage.py routing backtest --dataset FILE [--dataset FILE ...] --strong MODEL \\
        --weak MODEL [--router NAME | --router-file PATH] [--mode route|cascade] \\
        [--scores-out scores.csv] [--json-out report.json] [--plot-out curve.html]

Reads RouterBench-style CSV files (see routing_platform/engine/quality/dataset.py) and
reports APGR, CPT(50%), CPT(80%), the strong share and savings at 95% of the strong
model's quality, for the router and for the random and prompt-length baselines.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from django.core.management.base import CommandError

from routing_platform.engine.learned import LearnedRouterError, load_router
from routing_platform.engine.quality.backtest import run_backtest
from routing_platform.engine.quality.dataset import DatasetError, load_datasets, parse_scale
from routing_platform.engine.quality.embedding import EmbeddingError
from routing_platform.engine.quality.metrics import MetricsError
from routing_platform.engine.quality.plot import write_curve_html
from routing_platform.engine.quality.routers import ROUTER_NAMES

HELP = "Backtest a router on recorded model outcomes (RouterBench-style CSV): APGR, CPT, savings."
ROUTER_CHOICES = ROUTER_NAMES


def add_arguments(parser) -> None:
    parser.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="FILE",
        help="RouterBench-style CSV (prompt, eval_name, one 0/1 or score column per model, "
        "optional <model>|model_response and <model>|total_cost). Repeat for several files.",
    )
    parser.add_argument("--strong", required=True, metavar="MODEL", help="Strong model column.")
    parser.add_argument("--weak", required=True, metavar="MODEL", help="Weak model column.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--router",
        choices=ROUTER_CHOICES,
        default="heuristic",
        help="Router to evaluate (default: heuristic, the engine's classifier). 'learned' is "
        "trained and scored out-of-fold (folds by MMLU subject / prompt hash); 'oracle' "
        "knows the answers (the ceiling).",
    )
    which.add_argument(
        "--router-file",
        metavar="PATH",
        help="A learned-router artifact from `routing train-router`, scored on every row.",
    )
    parser.add_argument(
        "--mode",
        choices=("route", "cascade"),
        default="route",
        help="route: decide before any call. cascade: the weak model answers first (its "
        "answer may be read) and every row pays the weak call. Default: route.",
    )
    parser.add_argument("--scores-out", metavar="PATH", help="Write sample_id,score per row.")
    parser.add_argument("--json-out", metavar="PATH", help="Write the full report as JSON.")
    parser.add_argument(
        "--plot-out", metavar="PATH", help="Write the quality-vs-cost curves (Plotly HTML)."
    )
    parser.add_argument(
        "--folds", type=int, default=5, help="Cross-validation folds for 'learned' (default 5)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random baseline.")
    parser.add_argument(
        "--scale",
        metavar="LOW-HIGH",
        help="Range of the model score columns, e.g. 0-1 (correctness) or 1-10 (judge "
        "grades); quality is reported on it. Default: detected from the scores.",
    )
    parser.add_argument(
        "--ood-fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="With --router-file: rows outside the router's training domain are routed by the "
        "prompt-length rule, as when serving (default: on).",
    )
    parser.add_argument(
        "--embeddings",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="With --router learned: add WordLlama prompt embeddings to the features.",
    )
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")


class ProgressBar:
    """A one-line progress bar on stderr (`[#####-----] 3/5 label`), for long runs."""

    WIDTH = 24

    def __init__(self, stream, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self.enabled or total <= 0:
            return
        filled = round(self.WIDTH * done / total)
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{total} "
            f"{label[:40]:<40} {elapsed:5.1f}s"
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:5.1f}%"


def _quality(report: dict, value) -> str:
    """A quality on the report's scale: a percentage for 0-1 outcomes, else a grade."""
    scale = report.get("scale") or {"low": 0, "high": 1}
    if value is None:
        return "-"
    if scale["low"] == 0 and scale["high"] == 1:
        return _percent(value).strip()
    return f"{value:.2f} on {scale['low']:g}-{scale['high']:g}"


def format_table(report: dict) -> list[str]:
    """The report as lines of a table for people."""
    lines = [
        f"{report['rows']} rows ({', '.join(report['eval_sets'])}), mode {report['mode']}: "
        f"strong {report['strong']} vs weak {report['weak']}",
        f"cost: {report['cost']}",
    ]
    if report.get("rows_skipped_without_outcome"):
        lines.append(
            f"{report['rows_skipped_without_outcome']} rows without a score for both models "
            "were left out"
        )
    header = (
        f"{'router':<16}{'APGR':>7}{'CPT50':>9}{'CPT80':>9}{'strong@95%':>12}"
        f"{'savings@95%':>13}  kind"
    )
    lines += [header, "-" * len(header)]
    for router in report["routers"]:
        lines.append(
            f"{router['name']:<16}{router['apgr']:>7.3f}{_percent(router['cpt50']):>9}"
            f"{_percent(router['cpt80']):>9}{_percent(router['strong_share_at_95']):>12}"
            f"{_percent(router['savings_at_95']):>13}  {router['kind']}"
        )
        for group, metrics in router.get("by_eval", {}).items():
            if "error" in metrics:
                lines.append(f"  {group:<14}{metrics['error']}")
                continue
            lines.append(
                f"  {group:<14}{metrics['apgr']:>7.3f}{_percent(metrics['cpt50']):>9}"
                f"{_percent(metrics['cpt80']):>9}{_percent(metrics['strong_share_at_95']):>12}"
                f"{_percent(metrics['savings_at_95']):>13}"
            )
    for router in report["routers"]:
        point = router.get("operating_point")
        if point:
            lines.append(
                f"{router['name']} at its threshold {point['threshold']:.3f}: "
                f"{_percent(point['strong_share']).strip()} strong, quality "
                f"{_quality(report, point['quality'])}, savings "
                f"{_percent(point['savings']).strip()}"
            )
    fallback = report.get("fallback")
    if fallback:
        lines.append(
            f"out of the router's training domain: {fallback['rows']} rows "
            f"({_percent(fallback['share']).strip()}), "
            + ("routed as when serving" if fallback["enabled"] else "fallback off")
        )
    lines.append(
        f"weak quality {_quality(report, report['routers'][0]['weak_quality'])}, strong quality "
        f"{_quality(report, report['routers'][0]['strong_quality'])}; APGR of random routing "
        "is 0.5 by construction"
    )
    return lines


def _write_scores(path: Path, sample_ids, scores) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "score"])
        for sample_id, score in zip(sample_ids, scores, strict=True):
            writer.writerow([sample_id, f"{float(score):.6g}"])


def handle(command, **options) -> None:
    strong, weak = options["strong"], options["weak"]
    router_file = None
    router_name = options["router"]
    progress = ProgressBar(
        getattr(command.stderr, "_out", sys.stderr), enabled=not options["no_progress"]
    )
    try:
        scale = parse_scale(options["scale"]) if options["scale"] else None
        dataset = load_datasets(options["dataset"], models=[strong, weak])
        if options["router_file"]:
            router_file = load_router(options["router_file"])
            routers: tuple[str, ...] = ()
        else:
            routers = (router_name,)
        report = run_backtest(
            dataset,
            strong=strong,
            weak=weak,
            routers=routers,
            router_file=router_file,
            router_file_name=Path(options["router_file"]).name if router_file else "router-file",
            mode=options["mode"],
            n_folds=options["folds"],
            seed=options["seed"],
            scale=scale,
            fallback=options["ood_fallback"],
            embeddings=options["embeddings"],
            progress=progress,
        )
    except (DatasetError, LearnedRouterError, MetricsError, EmbeddingError, ValueError) as err:
        progress.close()
        raise CommandError(str(err)) from err
    progress.close()
    data = report.as_dict()
    main = report.results[0]
    try:
        if options["scores_out"]:
            _write_scores(Path(options["scores_out"]), dataset.sample_ids, main.scores)
        if options["json_out"]:
            path = Path(options["json_out"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2) + "\n")
        if options["plot_out"]:
            write_curve_html(report, options["plot_out"])
    except OSError as err:
        raise CommandError(f"cannot write output: {err}") from err

    if options["json"]:
        command.stdout.write(json.dumps(data, indent=2))
        return
    for line in format_table(data):
        command.stdout.write(line)
    for key, label in (("scores_out", "scores"), ("json_out", "report"), ("plot_out", "plot")):
        if options[key]:
            command.stdout.write(command.style.SUCCESS(f"{label} written to {options[key]}"))
