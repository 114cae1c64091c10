"""`routing demo-seed`: the demo's running experiment, with simulated traffic in it.

Creates (or reuses) "smart-routing-rollout": original_council (control) vs smart_routing,
started at 1% and ramped through the default schedule to 100% (so the audit log shows a
rollout), 10% shadow pairs. Then tops the experiment up to ``--requests`` calls through
the real path: the RQ worker that `make demo` starts first, or this process when no worker
shows up.
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from experiments import services
from experiments.models import Experiment, RoutedCall
from experiments.services.lifecycle import ramp_next_step
from routing_platform.cli.subcommands import simulate as simulate_command

HELP = (
    "Create (or reuse) the running demo experiment 'smart-routing-rollout' and simulate "
    "traffic into it."
)
DEMO_KEY = "smart-routing-rollout"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--requests",
        type=int,
        default=300,
        help="Calls the demo experiment should hold; only the missing ones are simulated "
        "(default 300).",
    )
    parser.add_argument("--units", type=int, default=None, help="Distinct users (default N/3).")
    parser.add_argument(
        "--shadow",
        type=float,
        default=None,
        help="Shadow share 0-1 (default: the experiment's, 10%%).",
    )
    parser.add_argument("--sync", action="store_true", help="Run the calls in this process.")
    parser.add_argument(
        "--worker-wait",
        type=float,
        default=30.0,
        help="Seconds to wait for an RQ worker before running the calls in this process.",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds to wait for calls.")
    parser.add_argument("--json", action="store_true", help="Print a JSON summary for scripts.")


def demo_experiment(command, user):
    """The demo experiment, created and ramped to 100% on first use."""
    experiment = Experiment.objects.filter(key=DEMO_KEY).first()
    if experiment is None:
        experiment = services.experiment_create(
            key=DEMO_KEY,
            name="Smart routing rollout",
            hypothesis=(
                "Smart routing cuts the cost per request by more than 70% against the "
                "original council, with no loss of quality, confidence or error rate."
            ),
            arms=[
                {
                    "key": "original_council",
                    "name": "Original council",
                    "strategy": "original_council",
                    "weight": 50,
                    "is_control": True,
                },
                {
                    "key": "smart_routing",
                    "name": "Smart routing",
                    "strategy": "smart_routing",
                    "weight": 50,
                },
            ],
            user=user,
            unit_type=Experiment.UnitType.USER,
            traffic_percentage=1,
            shadow_percentage=10,
            minimum_sample_per_arm=100,
        )
        command.stdout.write(f"experiment created {DEMO_KEY!r}")
    if experiment.status == Experiment.Status.DRAFT:
        services.experiment_start(experiment=experiment, user=user)
        while ramp_next_step(experiment=experiment) is not None:
            services.experiment_ramp(experiment=experiment, user=user)
        command.stdout.write(f"experiment {DEMO_KEY!r} started and ramped 1% -> 100%")
    elif experiment.status == Experiment.Status.PAUSED:
        services.experiment_resume(experiment=experiment, user=user)
        command.stdout.write(f"experiment {DEMO_KEY!r} resumed")
    return experiment


def wait_for_worker(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            counts = simulate_command.workers_listening(("routing", "shadow"))
        except CommandError:
            return False
        if all(counts.values()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def handle(command, **options) -> None:
    user = get_user_model().objects.filter(is_staff=True).order_by("id").first()
    try:
        experiment = demo_experiment(command, user)
    except ValidationError as err:
        raise CommandError("The demo experiment cannot start: " + " ".join(err.messages)) from None
    if experiment.status != experiment.Status.RUNNING:
        command.stdout.write(
            f"experiment {DEMO_KEY!r} is {experiment.status}; no traffic simulated "
            "(its serving arm takes all traffic)."
        )
        return
    existing = RoutedCall.objects.filter(experiment=experiment, is_shadow=False).count()
    missing = options["requests"] - existing
    if missing <= 0:
        command.stdout.write(
            f"experiment {DEMO_KEY!r} already holds {existing} calls; nothing to add."
        )
        return
    sync = options["sync"]
    if not sync and not wait_for_worker(options["worker_wait"]):
        command.stderr.write(
            "No RQ worker is listening on 'routing' and 'shadow': running the demo calls "
            "in this process."
        )
        sync = True
    units = options["units"] or max(options["requests"] // 3, 1)
    summary = simulate_command.simulate(
        command,
        experiment=experiment,
        requests=missing,
        units=units,
        shadow=options["shadow"],
        kind="mixed",
        seed=existing,  # a top-up adds new requests, not the same ones again
        sync=sync,
        wait=True,
        timeout=options["timeout"],
    )
    simulate_command.report(command, summary, as_json=options["json"])
