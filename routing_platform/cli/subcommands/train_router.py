"""`routing train-router`: learn which prompts need the strong model, and save the router.

    manage.py routing train-router --dataset FILE [--dataset FILE ...] --strong MODEL \\
        --weak MODEL [--mode route|cascade] --out PATH
    manage.py routing train-router --from-calls --experiment KEY [--strong ARM --weak ARM] \\
        [--signal judge|agreement|feedback] --out PATH

Prints the cross-validated quality it can be expected to reach (folds by MMLU subject /
prompt hash) and calibrates its threshold on those out-of-fold scores: to 95% of the
strong model's quality by default, or to --target-quality / --target-strong-share.
Point ROUTER_MODEL_PATH at the saved file to route with it.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from django.core.management.base import CommandError

from experiments.selectors import experiment_get
from experiments.selectors_training import (
    TrainingDataError,
    shadow_training_pairs,
    training_arms,
)
from routing_platform.cli.subcommands.backtest import ProgressBar
from routing_platform.engine.learned import LearnedRouterError, save_router
from routing_platform.engine.quality.calibrated_training import train_and_calibrate
from routing_platform.engine.quality.dataset import (
    DatasetError,
    RoutingDataset,
    dataset_columns,
    load_dataset,
    load_datasets,
)
from routing_platform.engine.quality.embedding import EmbeddingError

#: Labelled pairs --from-calls needs at least.
MIN_PAIRS = 10

HELP = "Train a learned router on recorded outcomes (CSV files or shadow-mode pairs)."
# Embedding features by default? Decided by the cross-validated APGR in BENCHMARKS.md.
DEFAULT_EMBEDDINGS = False


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset",
        action="append",
        metavar="FILE",
        help="RouterBench-style CSV of labelled outcomes (repeat for several files).",
    )
    source.add_argument(
        "--from-calls",
        action="store_true",
        help="Train on the platform's recorded shadow-mode pairs of --experiment.",
    )
    parser.add_argument(
        "--experiment", metavar="KEY", help="Experiment whose shadow pairs to learn from."
    )
    parser.add_argument(
        "--signal",
        choices=("judge", "agreement", "feedback"),
        help="--from-calls: label the pairs with this quality signal (docs/quality.md). "
        "Without it the labels are final_score, the score level the answers gave, not their "
        "quality.",
    )
    parser.add_argument(
        "--strong",
        metavar="MODEL",
        help="Strong model column (CSV), or the strong arm's key (--from-calls; default: the "
        "control arm).",
    )
    parser.add_argument(
        "--weak",
        metavar="MODEL",
        help="Weak model column (CSV), or the weak arm's key (--from-calls; default: the other "
        "arm).",
    )
    parser.add_argument(
        "--mode",
        choices=("route", "cascade"),
        default="route",
        help="route: decide from the prompt alone (what ROUTER_MODEL_PATH needs). cascade: "
        "also read the weak model's answer. Default: route.",
    )
    parser.add_argument("--out", required=True, metavar="PATH", help="Where to save the router.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--target-quality",
        type=float,
        metavar="SHARE",
        help="Calibrate the threshold to reach this share of the strong model's quality "
        "(default 0.95).",
    )
    target.add_argument(
        "--target-strong-share",
        type=float,
        metavar="SHARE",
        help="Calibrate the threshold to send about this share of calls (0-1) to the strong model.",
    )
    parser.add_argument(
        "--calibrate-on",
        metavar="FILE",
        help="Calibrate the threshold on this CSV of your own prompts instead of the training "
        "rows (a prompt column suffices for --target-strong-share; --target-quality also needs "
        "the two model columns).",
    )
    parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds (default 5).")
    parser.add_argument(
        "--regularization",
        type=float,
        default=0.03,
        help="Inverse regularisation strength C of the logistic models (default 0.03).",
    )
    parser.add_argument(
        "--embeddings",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_EMBEDDINGS,
        help="Add WordLlama prompt embeddings (from the installed wordllama package, offline) "
        f"to the features (default: {'on' if DEFAULT_EMBEDDINGS else 'off'}; see BENCHMARKS.md).",
    )
    parser.add_argument(
        "--ood-fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Keep a summary of the training prompts in embedding space, so the engine routes "
        "prompts unlike them by the prompt-length rule (or ROUTER_FALLBACK_TIER) (default: on).",
    )
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")


def _dataset_from_calls(options):
    """The experiment's shadow pairs as a two-model dataset ("strong", "weak" columns)."""

    key = options["experiment"]
    if not key:
        raise CommandError("--from-calls needs --experiment KEY (see `routing experiments`)")
    experiment = experiment_get(key=key)
    if experiment is None:
        raise CommandError(f"no experiment {key!r}; check the key in the admin")
    try:
        strong_arm, weak_arm = training_arms(
            experiment=experiment, strong_arm=options["strong"], weak_arm=options["weak"]
        )
    except TrainingDataError as err:
        raise CommandError(str(err)) from err
    signal = options.get("signal")
    pairs, skipped = shadow_training_pairs(
        experiment=experiment, strong_arm=strong_arm, weak_arm=weak_arm, signal=signal
    )
    if len(pairs) < MIN_PAIRS:
        label = f"a {signal} signal" if signal else "a quality score"
        raise CommandError(
            f"experiment {key!r} has {len(pairs)} usable shadow pairs ({skipped} skipped "
            f"without a prompt or {label}); at least {MIN_PAIRS} are needed: raise its shadow "
            "percentage and let calls run"
            + (" (and the judge queue's worker)" if signal == "judge" else "")
        )
    dataset = RoutingDataset(
        sample_ids=tuple(f"call-{pair.primary_call_id}" for pair in pairs),
        eval_names=tuple(f"calls-{key}" for _ in pairs),
        prompts=tuple(pair.prompt for pair in pairs),
        scores={
            strong_arm: np.array([pair.strong_quality for pair in pairs]),
            weak_arm: np.array([pair.weak_quality for pair in pairs]),
        },
        responses={weak_arm: tuple(pair.weak_response for pair in pairs)},
        sources=(f"experiment {key} shadow pairs" + (f" ({signal})" if signal else ""),),
        task_types=tuple(pair.task_type for pair in pairs),
    )
    return dataset, strong_arm, weak_arm, skipped


def handle(command, **options) -> None:
    skipped = 0
    if options["from_calls"]:
        dataset, strong, weak, skipped = _dataset_from_calls(options)
    else:
        strong, weak = options["strong"], options["weak"]
        if not strong or not weak:
            raise CommandError("name the two model columns with --strong MODEL --weak MODEL")
        try:
            dataset = load_datasets(options["dataset"], models=[strong, weak])
        except DatasetError as err:
            raise CommandError(str(err)) from err
    calibration = None
    if options["calibrate_on"]:
        path = options["calibrate_on"]
        columns = dataset_columns(path)
        labelled = [strong, weak] if strong in columns and weak in columns else []
        try:
            calibration = load_dataset(path, models=labelled)
        except DatasetError as err:
            raise CommandError(str(err)) from err
    progress = ProgressBar(
        getattr(command.stderr, "_out", sys.stderr), enabled=not options["no_progress"]
    )
    try:
        result = train_and_calibrate(
            dataset,
            strong=strong,
            weak=weak,
            mode=options["mode"],
            n_folds=options["folds"],
            regularization=options["regularization"],
            target_strong_share=options["target_strong_share"],
            target_quality=options["target_quality"],
            calibration=calibration,
            embeddings=options["embeddings"],
            domain=options["ood_fallback"],
            progress=progress,
        )
        path = save_router(result.router, options["out"])
    except (DatasetError, LearnedRouterError, EmbeddingError, ValueError) as err:
        raise CommandError(str(err)) from err
    except OSError as err:
        raise CommandError(f"cannot write {options['out']}: {err}") from err
    finally:
        progress.close()
    summary = {**result.summary, "out": str(path), "skipped_pairs": skipped}
    if options["json"]:
        command.stdout.write(json.dumps(summary, indent=2))
        return
    command.stdout.write(
        f"trained on {summary['rows']} rows ({', '.join(summary['datasets'])}), "
        f"mode {summary['mode']}: strong {strong} vs weak {weak}"
    )
    cv = summary["cross_validation"]
    if cv:
        command.stdout.write(
            f"cross-validated ({cv['folds']} folds, never scored on rows it trained on): "
            f"APGR {cv['apgr']:.3f}, CPT50 {100 * cv['cpt50']:.1f}%, "
            f"CPT80 {100 * cv['cpt80']:.1f}%, savings at 95% quality "
            f"{100 * cv['savings_at_95']:.1f}%"
        )
    calibration = summary["calibration"] or {}
    if calibration:
        command.stdout.write(
            f"threshold {calibration['threshold']:.4f} (target {calibration['target']} "
            f"{calibration['target_value']}): {100 * calibration['strong_share']:.1f}% of calls "
            "to the strong model on the calibration rows"
        )
    if summary["embedding"]:
        command.stdout.write(
            f"embedding {summary['embedding']['name']} {summary['embedding']['version']}: "
            f"features {'on' if summary['embedding_features'] else 'off'}, out-of-domain "
            + (
                f"fallback beyond distance {summary['domain_threshold']:.3f}"
                if summary["domain_threshold"] is not None
                else "fallback off"
            )
        )
    for note in summary["notes"]:
        command.stdout.write(command.style.WARNING(note))
    command.stdout.write(
        command.style.SUCCESS(f"router saved to {path}")
        + " (use it with ROUTER_MODEL_PATH or `routing backtest --router-file`)"
    )
