"""`routing stats-validate`: check the statistics by simulation (fixed seeds).

Simulates A/A experiments (no true difference) and A/B experiments (a known lift) and
prints the false-positive rate of each metric family with one look, with 28 daily looks
(naive vs sequential testing), and the coverage of the 95% interval for the relative lift.
Then the same for clustered units (``clustered_units`` in the JSON: heavy-tailed calls per
unit, a per-unit random effect, ratio metrics by the delta method), a CUPED scenario, and
the delta method's agreement with an independent numpy computation.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import CommandError

from experiments.stats import StatsInputError
from experiments.stats.simulation import DEFAULT_SEED, VALIDITY_CHECKS, run_validation
from experiments.stats.simulation_units import UNIT_VALIDITY_CHECKS, run_unit_validation

HELP = "Validate the statistics by simulation: A/A false positives, peeking, CI coverage."


def add_arguments(parser) -> None:
    parser.add_argument(
        "--sims", type=int, default=10_000, help="Simulated experiments per check (default 10,000)."
    )
    parser.add_argument(
        "--units-per-arm",
        type=int,
        default=2_000,
        help="Units per arm in each experiment (default 2,000).",
    )
    parser.add_argument(
        "--days", type=int, default=28, help="Daily looks for the peeking checks (default 28)."
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="Random seed (default: the fixed suite seed)."
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object for scripts.")


def handle(command, **options) -> None:
    sims = options["sims"]
    if sims is None or sims < 1:
        raise CommandError("--sims must be at least 1 (10,000 gives the published figures).")
    if sims > 1_000_000:
        raise CommandError(
            "--sims above 1,000,000 would take hours; use 10,000 for the published figures."
        )
    units, days = options["units_per_arm"], options["days"]
    if days < 1 or units < days:
        raise CommandError(
            "Give --days >= 1 and --units-per-arm >= --days (at least one unit a day)."
        )

    def progress(done: int, total: int, metric: str) -> None:
        if not options["json"]:
            sys.stderr.write(
                f"\r  simulating [{'#' * done}{'.' * (total - done)}] {done}/{total} {metric:<20}"
            )
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    seed = DEFAULT_SEED if options["seed"] is None else options["seed"]
    try:
        results = run_validation(
            sims=sims, units_per_arm=units, days=days, seed=seed, progress=progress
        )
        results["clustered_units"] = run_unit_validation(
            sims=sims, units_per_arm=units, seed=seed, progress=progress
        )
    except StatsInputError as error:
        raise CommandError(str(error)) from error
    if options["json"]:
        command.stdout.write(json.dumps(results))
        return
    out = command.stdout
    out.write(
        command.style.MIGRATE_HEADING(
            f"Statistics validation: {sims:,} simulated experiments per check, "
            f"{units:,} units per arm, {days} daily looks, alpha 5%"
        )
    )
    if sims < 10_000:
        out.write("  (the targets are set for 10,000 simulations; fewer are noisier)")
    for checks, section in (
        (VALIDITY_CHECKS, results),
        (UNIT_VALIDITY_CHECKS, results["clustered_units"]),
    ):
        for key, title, target, check in checks:
            out.write(f"\n  {title}, target {target}")
            for metric, rate in section[key].items():
                mark = command.style.SUCCESS("ok  ") if check(rate) else command.style.ERROR("MISS")
                figure = f"{rate:.1e}" if key == "reference_agreement" else f"{rate * 100:6.2f}%"
                out.write(f"    {mark} {metric:<18} {figure}")
