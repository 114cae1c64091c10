"""`routing status`: is smart routing on, with what thresholds, which providers, are the
queues and workers alive, which experiments run. Never prints a key."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from rq import Queue, Worker

from api.durability import DURABLE, redis_persistence
from api.recording import records_backlog
from experiments.jobs import live_worker_count
from experiments.models import Experiment
from routing_platform import runtime
from routing_platform.cli.subcommands._tables import as_json, table

HELP = (
    "Current status: smart routing on/off, thresholds, providers configured (never their "
    "keys), queues and workers, running experiments."
)
#: Seconds to wait for Redis before calling it unreachable.
REDIS_TIMEOUT_S = 1.0


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")


def redact_url(url: str) -> str:
    """A URL without its user name and password (``redis://:secret@host`` -> ``redis://***@host``)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def routing_status() -> dict:
    config = runtime.router_config()
    return {
        "smart_routing_enabled": config.enable_smart_routing,
        "escalation_threshold": config.escalation_threshold,
        "escalation_enabled": config.enable_escalation,
        "cost_optimization": config.cost_optimization_mode,
        "provider_mode": config.provider_mode,
        "simulated": runtime.simulated(),
        "learned_router_path": config.learned_router_path or None,
        "request_timeout_s": config.request_timeout_s,
        "max_retries": config.max_retries,
        "simulation_seed": settings.ROUTER_SIMULATION_SEED,
    }


def providers_status() -> list[dict]:
    """Which providers have credentials; keys are reported only as set / not set."""
    compatible_models = list(settings.OPENAI_COMPATIBLE_MODELS)
    return [
        {
            "name": "openai",
            "configured": bool(settings.OPENAI_API_KEY),
            "base_url": redact_url(settings.OPENAI_BASE_URL),
        },
        {
            "name": "anthropic",
            "configured": bool(settings.ANTHROPIC_API_KEY),
            "base_url": redact_url(settings.ANTHROPIC_BASE_URL),
        },
        {
            "name": "gemini",
            "configured": bool(settings.GEMINI_API_KEY),
            "base_url": redact_url(settings.GEMINI_BASE_URL),
        },
        {
            "name": "openai_compatible",
            "configured": bool(settings.OPENAI_COMPATIBLE_BASE_URL),
            "base_url": redact_url(settings.OPENAI_COMPATIBLE_BASE_URL) or None,
            "models": compatible_models,
        },
    ]


def queues_status() -> dict:
    """Jobs per queue and the workers, or ``reachable: False`` with the reason."""

    names = list(settings.RQ_QUEUES)
    url = settings.RQ_QUEUES[names[0]]["URL"] if names else ""
    result = {"redis_url": redact_url(url), "reachable": False, "queues": [], "workers": []}
    if not url:
        result["error"] = "no RQ queue is configured (settings.RQ_QUEUES is empty)"
        return result
    try:
        connection = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        connection.ping()
        result["persistence"] = redis_persistence(connection).as_dict()
        for name in names:
            queue = Queue(name, connection=connection)
            result["queues"].append(
                {
                    "name": name,
                    "queued": queue.count,
                    "started": queue.started_job_registry.count,
                    "failed": queue.failed_job_registry.count,
                    "scheduled": queue.scheduled_job_registry.count,
                }
            )
        for worker in Worker.all(connection=connection):
            result["workers"].append(
                {
                    "name": worker.name,
                    "state": str(worker.get_state()),
                    "queues": worker.queue_names(),
                }
            )
        result["live_workers"] = live_worker_count(connection)
        result["records"] = records_backlog(connection).as_dict()
        result["reachable"] = True
    except (redis.RedisError, OSError) as err:
        hint = (
            "start it with `make demo` (embedded redis-server) or set REDIS_URL"
            if url.startswith("unix://")
            else "check that the server at REDIS_URL runs"
        )
        result["error"] = f"Redis is unreachable ({err.__class__.__name__}: {err}); {hint}."
        result["queues"], result["workers"] = [], []
    return result


def experiments_status() -> list[dict]:
    running = Experiment.objects.filter(
        status__in=[Experiment.Status.RUNNING, Experiment.Status.PAUSED]
    ).prefetch_related("arms")
    return [
        {
            "key": experiment.key,
            "name": experiment.name,
            "status": experiment.status,
            "traffic_percentage": experiment.traffic_percentage,
            "started_at": experiment.started_at,
            "arms": [
                {"key": arm.key, "strategy": arm.strategy, "weight": arm.weight}
                for arm in experiment.arms.all()
            ],
        }
        for experiment in running
    ]


def status_snapshot() -> dict:
    return {
        "routing": routing_status(),
        "providers": providers_status(),
        "queue": queues_status(),
        "experiments": experiments_status(),
    }


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _write_persistence(out, style, persistence: dict) -> None:
    if persistence["state"] == DURABLE:
        out.write(
            "  persistence  "
            + style.SUCCESS(f"appendonly yes, appendfsync {persistence['appendfsync']}")
            + f"; a crash risks {persistence['loss_window']}"
        )
    else:
        out.write("  persistence  " + style.WARNING(persistence["warning"]))


def handle(command, **options) -> None:
    status = status_snapshot()
    if options["json"]:
        command.stdout.write(as_json(status))
        return
    out, style = command.stdout, command.style
    routing = status["routing"]
    out.write(style.MIGRATE_HEADING("Routing"))
    enabled = routing["smart_routing_enabled"]
    out.write(
        "  smart routing         "
        + (style.SUCCESS("enabled") if enabled else style.WARNING("disabled (original council)"))
    )
    out.write(f"  escalation threshold  {routing['escalation_threshold']:g}")
    out.write(f"  escalation            {'on' if routing['escalation_enabled'] else 'off'}")
    out.write(f"  cost optimization     {'on' if routing['cost_optimization'] else 'off'}")
    mode = routing["provider_mode"] + (" (simulated provider)" if routing["simulated"] else "")
    out.write(f"  provider mode         {mode}")
    out.write(f"  learned router        {routing['learned_router_path'] or 'none (heuristic)'}")
    out.write("")
    out.write(style.MIGRATE_HEADING("Providers (keys are never shown)"))
    out.write(
        table(
            ("provider", "configured", "base URL"),
            [
                [provider["name"], _yes(provider["configured"]), provider["base_url"] or "-"]
                for provider in status["providers"]
            ],
        )
    )
    if routing["simulated"]:
        out.write("  No provider is used: every call runs on the deterministic simulator.")
    out.write("")
    queue = status["queue"]
    out.write(style.MIGRATE_HEADING(f"Queues ({queue['redis_url']})"))
    if not queue["reachable"]:
        out.write("  " + style.ERROR(queue["error"]))
    else:
        _write_persistence(out, style, queue["persistence"])
        out.write(
            table(
                ("queue", "queued", "running", "failed", "scheduled"),
                [
                    [
                        item["name"],
                        item["queued"],
                        item["started"],
                        item["failed"],
                        item["scheduled"],
                    ]
                    for item in queue["queues"]
                ],
            )
        )
        _write_records(command, queue["records"], queue["live_workers"])
        if queue["workers"]:
            out.write(
                table(
                    ("worker", "state", "queues"),
                    [
                        [worker["name"], worker["state"], ", ".join(worker["queues"])]
                        for worker in queue["workers"]
                    ],
                )
            )
        else:
            out.write(
                "  "
                + style.WARNING("No worker is running: queued calls wait. Start one with ")
                + "`python manage.py rqworker routing shadow default`."
            )
    out.write("")
    out.write(style.MIGRATE_HEADING("Experiments running"))
    if not status["experiments"]:
        out.write("  none")
    for experiment in status["experiments"]:
        arms = ", ".join(
            f"{arm['key']} {arm['weight']}% ({arm['strategy']})" for arm in experiment["arms"]
        )
        out.write(
            f"  {experiment['key']}  {experiment['status']}  "
            f"traffic {experiment['traffic_percentage']:g}%  arms: {arms}"
        )


def _write_records(command, records: dict, live_workers: int) -> None:
    """The live-worker count and the call records waiting in Redis, with the dead letters."""
    out, style = command.stdout, command.style
    out.write(f"  live workers          {live_workers} (by liveness beat)")
    oldest = records["oldest_age_s"]
    waiting = f"{records['pending']}" + (f" (oldest {oldest:.0f} s)" if oldest is not None else "")
    out.write(f"  call records waiting  {waiting}")
    dead = records["dead_letters"]
    line = f"  dead letters          {dead}"
    out.write(style.ERROR(line + "  (see `routing dead-letters`)") if dead else line)
