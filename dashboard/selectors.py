"""The reads the dashboard pages need beyond ``router_dashboard`` (one query each).

- :func:`cost_by_model_series`: cost and requests per answering model per hour or day,
  summed by the database from the hourly call rollups;
- :func:`ramp_history`: an experiment's traffic share after each start, ramp and end, from
  its audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Sum

from experiments.models import AuditLogEntry, CallRollup, Experiment

#: At most this many models get their own line; the rest are summed as "other".
TOP_MODELS = 8


def cost_by_model_series(
    *,
    since: datetime | None,
    until: datetime,
    granularity: str,
    experiment_key: str | None = None,
) -> dict[str, list[dict]]:
    """``{model: [{"bucket_start", "cost_usd", "requests"}]}``, largest spenders first,
    served calls only (shadow calls cost money but answer nobody)."""
    rows = CallRollup.objects.filter(bucket_start__lt=until, is_shadow=False)
    if since is not None:
        rows = rows.filter(bucket_start__gte=since)
    if experiment_key:
        rows = rows.filter(experiment_key=experiment_key)
    # Grouped by the stored hour (no date function per row: SQLite would call Python for
    # each); hours fold into UTC days here, over a few rows per hour and model.
    grouped = (
        rows.order_by()
        .values("bucket_start", "model")
        .annotate(cost=Sum("cost_usd_sum"), requests=Sum("n"))
    )
    by_model: dict[str, dict[datetime, list]] = {}
    for row in grouped:
        moment = row["bucket_start"].astimezone(UTC)
        if granularity == "day":
            moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        entry = by_model.setdefault(row["model"] or "(none)", {}).setdefault(moment, [0.0, 0])
        entry[0] += float(row["cost"] or 0)
        entry[1] += row["requests"]
    ranked = sorted(by_model, key=lambda model: -sum(v[0] for v in by_model[model].values()))
    keep, rest = ranked[:TOP_MODELS], ranked[TOP_MODELS:]
    if rest:
        other: dict[datetime, list] = {}
        for model in rest:
            for moment, (cost, requests) in by_model[model].items():
                entry = other.setdefault(moment, [0.0, 0])
                entry[0] += cost
                entry[1] += requests
        by_model["other"] = other
        keep.append("other")
    return {
        model: [
            {"bucket_start": _iso(moment), "cost_usd": cost, "requests": requests}
            for moment, (cost, requests) in sorted(by_model[model].items())
        ]
        for model in keep
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


#: Audit actions that change how much traffic an experiment takes.
_RAMP_ACTIONS = (
    AuditLogEntry.Action.START,
    AuditLogEntry.Action.RAMP,
    AuditLogEntry.Action.STOP,
    AuditLogEntry.Action.CONCLUDE,
    AuditLogEntry.Action.ROLLBACK,
)


def ramp_history(*, experiment: Experiment) -> list[dict]:
    """``[{"at", "percentage", "action", "username"}]`` oldest first: the share of units in
    the experiment after each change (0 once it stopped or concluded)."""
    entries = (
        AuditLogEntry.objects.filter(experiment=experiment, action__in=_RAMP_ACTIONS)
        .order_by("created_at", "id")
        .values("created_at", "action", "changes", "username")
    )
    history = []
    for entry in entries:
        after = (entry["changes"] or {}).get("after") or {}
        percentage = after.get("traffic_percentage")
        if entry["action"] in (
            AuditLogEntry.Action.STOP,
            AuditLogEntry.Action.CONCLUDE,
            AuditLogEntry.Action.ROLLBACK,
        ):
            percentage = 0.0
        if percentage is None:
            continue
        history.append(
            {
                "at": _iso(entry["created_at"]),
                "percentage": float(percentage),
                "action": AuditLogEntry.Action(entry["action"]).label,
                "username": entry["username"] or "system",
            }
        )
    return history
