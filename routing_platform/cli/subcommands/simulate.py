"""`routing simulate`: drive simulated requests through the real path.

Each request is assigned (sticky), written as a queued call, enqueued on the "routing"
queue after commit, run by an RQ worker through the engine, and recorded; shadow twins go
to the "shadow" queue. ``--sync`` runs the same jobs in this process instead (no worker).
"""

from __future__ import annotations

import json
import time

import django_rq
from django.core.management.base import CommandError
from redis.exceptions import RedisError
from rq import Worker

from experiments import selectors, simulation

HELP = (
    "Simulate N requests through the real path (assignment, queue, worker, record) "
    "into a running experiment, with a progress bar."
)


def add_arguments(parser) -> None:
    parser.add_argument("--experiment", required=True, help="Key of a running experiment.")
    parser.add_argument("--requests", type=int, required=True, help="Number of requests (N).")
    parser.add_argument(
        "--units",
        type=int,
        default=None,
        help="Distinct users sending them (M; default N/3, at least 1).",
    )
    parser.add_argument(
        "--shadow",
        type=float,
        default=None,
        help="Share 0-1 of calls on which the other arm also runs as a pair (default: the "
        "experiment's shadow percentage).",
    )
    parser.add_argument(
        "--kind",
        choices=("mixed", "execute", "evaluate"),
        default="mixed",
        help="Request kinds: script evaluations, single executions, or both (default).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the request generator.")
    parser.add_argument(
        "--sync",
        action="store_true",
        help="Run the calls in this process instead of through the queue and a worker.",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="Enqueue and return without waiting."
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="Seconds to wait for the workers to record every call (default 600).",
    )
    parser.add_argument("--json", action="store_true", help="Print a JSON summary for scripts.")


class ProgressBar:
    """A one-line progress bar on stderr (stdout stays clean for --json). When stderr is
    not a terminal, only the final line is written."""

    width = 30

    def __init__(self, command, label: str, total: int) -> None:
        self.command, self.label, self.total = command, label, max(total, 1)
        self.started = time.monotonic()
        self.live = command.stderr.isatty()
        self._last = -1
        self._done = 0

    def _line(self, done: int) -> str:
        filled = int(self.width * done / self.total)
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.label:<9} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done}/{self.total} {rate:7.1f}/s"
        )

    def update(self, done: int) -> None:
        self._done = done
        step = max(self.total // 100, 1)
        if not self.live or (done != self.total and done - self._last < step):
            return
        self._last = done
        self.command.stderr.write("\r" + self._line(done), ending="")
        self.command.stderr.flush()

    def finish(self) -> None:
        self.command.stderr.write("" if self.live else self._line(self._done))


def validate_options(options: dict) -> tuple[int, int, float | None]:
    requests = options["requests"]
    if requests is None or not 1 <= requests <= 1_000_000:
        raise CommandError(f"--requests must be between 1 and 1,000,000; got {requests}.")
    units = options.get("units")
    units = max(requests // 3, 1) if units is None else units
    if units < 1:
        raise CommandError(f"--units must be at least 1; got {units}.")
    shadow = options.get("shadow")
    if shadow is not None and not 0.0 <= shadow <= 1.0:
        raise CommandError(f"--shadow is a share between 0 and 1 (e.g. 0.2); got {shadow}.")
    if options.get("timeout", 1) <= 0:
        raise CommandError("--timeout must be a positive number of seconds.")
    return requests, units, shadow


def running_experiment(key: str):
    experiment = selectors.experiment_get(key=key)
    if experiment is None:
        raise CommandError(
            f"No experiment with key {key!r}: create it in the admin "
            "(/admin/experiments/experiment/add/) or run `manage.py routing demo-seed`."
        )
    if experiment.status != experiment.Status.RUNNING:
        raise CommandError(
            f"Experiment {key!r} is {experiment.status}: only a running experiment assigns "
            "traffic. Start or resume it (admin action) first."
        )
    return experiment


def workers_listening(queue_names: tuple[str, ...]) -> dict[str, int]:
    """Workers per queue; a CommandError that says what to do when Redis is unreachable."""
    counts = {}
    try:
        for name in queue_names:
            queue = django_rq.get_queue(name)
            counts[name] = len(Worker.all(queue=queue))
    except RedisError as err:
        raise CommandError(
            f"Redis is not reachable ({type(err).__name__}): start the platform with "
            "`make demo` or set REDIS_URL, or pass --sync to run the calls in this process."
        ) from None
    return counts


def require_workers(queue_names: tuple[str, ...]) -> None:
    counts = workers_listening(queue_names)
    idle = [name for name, count in counts.items() if count == 0]
    if idle:
        raise CommandError(
            f"No RQ worker is listening on {', '.join(repr(name) for name in idle)}: start one "
            "with `python manage.py rqworker routing shadow default`, or pass --sync to run "
            "the calls in this process."
        )


def simulate(
    command,
    *,
    experiment,
    requests: int,
    units: int,
    shadow: float | None,
    kind: str,
    seed: int,
    sync: bool,
    wait: bool,
    timeout: float,
) -> dict:
    """Enqueue (or run) the traffic, wait for it, and return the summary."""
    share = shadow if shadow is not None else experiment.shadow_percentage / 100.0
    if not sync:
        require_workers(("routing", "shadow") if share > 0 else ("routing",))
    started = time.monotonic()
    bar = ProgressBar(command, "enqueue", requests)
    traffic = simulation.traffic_enqueue(
        experiment=experiment,
        requests=simulation.simulated_requests(count=requests, units=units, kind=kind, seed=seed),
        shadow_share=shadow,
        dispatch=not sync,
        on_progress=bar.update,
    )
    bar.finish()
    total = len(traffic.all_ids)
    if sync:
        bar = ProgressBar(command, "run", total)
        simulation.traffic_run_inline(traffic=traffic, on_progress=bar.update)
        bar.finish()
    elif wait:
        bar = ProgressBar(command, "recorded", total)
        finished = simulation.calls_wait(
            call_ids=traffic.all_ids, timeout_s=timeout, on_progress=bar.update
        )
        bar.finish()
        if finished < total:
            raise CommandError(
                f"{total - finished} of {total} calls are still unfinished after {timeout:g} s. "
                "Are the workers running (`python manage.py rqworker routing shadow`)? "
                "Queued calls are recorded as soon as a worker picks them up."
            )
    summary = simulation.traffic_summary(traffic=traffic)
    elapsed = time.monotonic() - started
    summary.update(
        experiment=experiment.key,
        mode="sync" if sync else ("queued" if wait else "enqueued only"),
        elapsed_s=round(elapsed, 3),
        calls_per_s=round(total / elapsed, 2) if elapsed > 0 else None,
    )
    return summary


def report(command, summary: dict, *, as_json: bool) -> None:
    if as_json:
        command.stdout.write(json.dumps(summary, sort_keys=True))
        return
    command.stdout.write(
        command.style.SUCCESS(
            f"{summary['requests']} requests ({summary['shadow_calls']} shadow twins) into "
            f"{summary['experiment']!r}: {summary['finished']} recorded, {summary['errors']} "
            f"errors, {summary['elapsed_s']:.1f} s ({summary['mode']})."
        )
    )
    command.stdout.write(f"{'arm':<28} {'calls':>7} {'success':>8} {'error':>6}")
    for arm, row in summary["by_arm"].items():
        command.stdout.write(f"{arm:<28} {row['calls']:>7} {row['success']:>8} {row['error']:>6}")


def handle(command, **options) -> None:
    requests, units, shadow = validate_options(options)
    experiment = running_experiment(options["experiment"])
    summary = simulate(
        command,
        experiment=experiment,
        requests=requests,
        units=units,
        shadow=shadow,
        kind=options["kind"],
        seed=options["seed"],
        sync=options["sync"],
        wait=not options["no_wait"],
        timeout=options["timeout"],
    )
    report(command, summary, as_json=options["json"])
