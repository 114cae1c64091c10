"""Dashboard metrics, aggregated by the database from the call rollups.

Three tables, each read at the grain that keeps it small:

1. the *cube*: ``SUM(...) GROUP BY`` every breakdown dimension (experiment, arm, strategy,
   complexity, tier, model, provider, task type, status, shadow) over the window; a few
   hundred rows, folded in Python into the overview and each breakdown. Closed UTC days
   come from the daily compaction (:class:`CallRollupDaily`, kept in step by
   ``experiments.rollups_daily``), the rest (today, the edges of an hour-aligned window)
   from the hourly :class:`CallRollup`; a :class:`ReadPlan` says which rows of which table
   make up a window, and the query runs once per table;
2. the *series* and the *histograms*: one read of the hourly :class:`ArmRollup` rows
   (hour x experiment x arm x status x shadow, a few rows per hour however many models
   and task types): sums per hour (merged into days for windows over two days), and the
   latency and confidence histograms, read as text and summed bucket-wise with numpy, for
   p50 / p95 overall, per time bucket and per arm, and the confidence distribution.

Shadow calls (the background twin of a call, in shadow mode) are left out of every figure
except ``overview.shadow_requests`` / ``overview.shadow_cost_usd``: they are not requests
anybody made. Windows in hours are whole UTC hours ending after the current hour; windows
in days or weeks are calendar days in UTC, today included ("7d" = today and the six days
before), so a daily series never starts with a partial day.

The SQL aggregation is here; the arithmetic on the sums is the analysis layer's
(:class:`experiments.analysis.figures.Totals`, the same rate and savings functions the
report's arm summaries and the alerts use). Rates (escalation, error, share) are
fractions 0-1; the escalation rate is escalated over all finished calls, as in every
analysis (``experiments.analysis.metrics``); ``cost_savings_percentage`` is a percentage,
as in the user's guide. Money is summed as Decimal and reported as float USD.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db.models import Min, Q, QuerySet, Sum, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from experiments.analysis.figures import Totals, usd
from experiments.models import ArmRollup, CallRollup, CallRollupDaily, RoutedCall
from experiments.models.rollups import CALL_DIMENSIONS
from experiments.rollups_daily import compacted_until, daily_rollups_sync
from experiments.stats.histograms import (
    CONFIDENCE_HIST_EDGES,
    CONFIDENCE_HIST_SIZE,
    CONFIDENCE_HIST_TOP,
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
    LATENCY_HIST_TOP_MS,
    hist_quantile,
)

#: The windows the dashboard offers, as (key, label, length); None = all time.
WINDOW_CHOICES: tuple[tuple[str, str, timedelta | None], ...] = (
    ("24h", "Last 24 hours", timedelta(hours=24)),
    ("7d", "Last 7 days", timedelta(days=7)),
    ("30d", "Last 30 days", timedelta(days=30)),
    ("90d", "Last 90 days", timedelta(days=90)),
    ("all", "All time", None),
)
_WINDOW_PATTERN = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$", re.IGNORECASE)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
#: Windows up to this long get an hourly series; longer ones a daily series.
HOURLY_SERIES_MAX = timedelta(hours=48)

#: Breakdown name -> rollup field.
BREAKDOWNS: dict[str, str] = {
    "by_complexity": "complexity",
    "by_tier": "tier",
    "by_model": "model",
    "by_provider": "provider",
    "by_task_type": "task_type",
}
#: What the cube groups by: every call rollup dimension but the kind (calls of every kind
#: add up in the dashboard).
_CUBE_FIELDS = tuple(name for name in CALL_DIMENSIONS if name != "kind")
_ERROR = RoutedCall.Status.ERROR


class MetricsInputError(ValueError):
    """A window or filter the metrics cannot use; the message says what is accepted."""


@dataclass(frozen=True)
class TimeWindow:
    """A half-open interval ``[since, until)`` of rollup hours; ``since`` None = all time."""

    key: str
    label: str
    since: datetime | None
    until: datetime

    @property
    def length(self) -> timedelta | None:
        return None if self.since is None else self.until - self.since


def _hour_floor(moment: datetime) -> datetime:
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _day_floor(moment: datetime) -> datetime:
    return _hour_floor(moment).replace(hour=0)


def window_resolve(
    window: str | timedelta | TimeWindow | None = None, *, now: datetime | None = None
) -> TimeWindow:
    """The window for ``window``: None or "all" (all time); "24h" (whole hours, ending after
    the current hour); "7d", "2w" (calendar days in UTC, today included); or a timedelta
    (whole hours)."""
    if isinstance(window, TimeWindow):
        return window
    now = now or timezone.now()
    until = _hour_floor(now) + timedelta(hours=1)
    if window is None or (isinstance(window, str) and window.strip().lower() in {"all", ""}):
        return TimeWindow(key="all", label="All time", since=None, until=until)
    if isinstance(window, timedelta):
        hours = int(window.total_seconds() // 3600)
        key, since = f"{hours}h", until - timedelta(hours=hours)
    elif isinstance(window, str):
        match = _WINDOW_PATTERN.match(window)
        if not match:
            raise MetricsInputError(
                f"Unknown time window {window!r}: use 'all' or a number with h, d or w "
                "(e.g. 24h, 7d, 2w)."
            )
        count, unit = int(match.group(1)), match.group(2).lower()
        hours = count * _UNIT_HOURS[unit]
        key = f"{count}{unit}"
        if unit == "h":
            since = until - timedelta(hours=hours)
        else:
            since = _day_floor(now) - timedelta(hours=hours - 24)
    else:
        raise MetricsInputError(
            f"A time window is a string like '7d' or a timedelta, not {window!r}."
        )
    if hours < 1:
        raise MetricsInputError("A time window must be at least one hour long (e.g. 1h, 24h, 7d).")
    label = next((label for choice, label, _ in WINDOW_CHOICES if choice == key), f"Last {key}")
    return TimeWindow(key=key, label=label, since=since, until=until)


@dataclass(frozen=True)
class ReadPlan:
    """Which rows make up a time range: daily rows for ``[days_since, days_until)`` (none
    when ``days_until`` is None; ``days_since`` None = from the first day), hourly rows for
    each range in ``hours`` (``since`` None = from the first hour)."""

    days_since: datetime | None = None
    days_until: datetime | None = None
    hours: tuple[tuple[datetime | None, datetime], ...] = ()

    def querysets(
        self, *, experiment_key: str | None = None, shadow: bool | None = None
    ) -> list[QuerySet]:
        """One queryset per table the plan reads (daily first), filtered alike."""
        querysets = []
        if self.days_until is not None:
            rows = CallRollupDaily.objects.filter(bucket_start__lt=self.days_until)
            if self.days_since is not None:
                rows = rows.filter(bucket_start__gte=self.days_since)
            querysets.append(rows)
        ranges = Q()
        for since, until in self.hours:
            part = Q(bucket_start__lt=until)
            if since is not None:
                part &= Q(bucket_start__gte=since)
            ranges |= part
        if self.hours:
            querysets.append(CallRollup.objects.filter(ranges))
        filtered = []
        for rows in querysets:
            if experiment_key:
                rows = rows.filter(experiment_key=experiment_key)
            if shadow is not None:
                rows = rows.filter(is_shadow=shadow)
            filtered.append(rows.order_by())
        return filtered


def read_plan(
    since: datetime | None,
    until: datetime,
    *,
    compacted_until: datetime | None,
) -> ReadPlan:
    """The plan for ``[since, until)``: compacted days (those starting on or after ``since``,
    ending by ``until`` and before ``compacted_until``) from the daily table, the rest
    hourly. ``compacted_until`` None reads everything hourly."""
    if compacted_until is None:
        return ReadPlan(hours=((since, until),))
    first_day = None
    if since is not None:
        first_day = _day_floor(since)
        if first_day < since:
            first_day += timedelta(days=1)
    days_until = min(compacted_until, _day_floor(until))
    if first_day is not None and first_day >= days_until:
        return ReadPlan(hours=((since, until),))
    hours = []
    if since is not None and since < first_day:
        hours.append((since, first_day))
    if days_until < until:
        hours.append((days_until, until))
    return ReadPlan(days_since=first_day, days_until=days_until, hours=tuple(hours))


def _sums() -> dict:
    """The aggregate expressions every grouped query uses."""
    return {
        "requests": Sum("n"),
        "errors": Sum("n", filter=Q(status=_ERROR)),
        "escalated": Sum("escalated_n"),
        "cost_usd": Sum("cost_usd_sum"),
        "baseline_cost_usd": Sum("baseline_cost_usd_sum"),
        "input_tokens": Sum("input_tokens_sum"),
        "output_tokens": Sum("output_tokens_sum"),
        "latency_n": Sum("latency_n"),
        "latency_ms_sum": Sum("latency_ms_sum"),
        "confidence_n": Sum("confidence_n"),
        "confidence_sum": Sum("confidence_sum"),
        "quality_n": Sum("quality_n"),
        "quality_sum": Sum("quality_sum"),
        "quality_sumsq": Sum("quality_sumsq"),
    }


def totals_of(rows: Iterable[dict]) -> Totals:
    totals = Totals()
    for row in rows:
        totals.add(row)
    return totals


def cube(*, plan: ReadPlan, experiment_key: str | None = None) -> list[dict]:
    """Sums grouped by every breakdown dimension and shadow flag (one query per table)."""
    return [
        row
        for rows in plan.querysets(experiment_key=experiment_key)
        for row in rows.values(*_CUBE_FIELDS).annotate(**_sums())
    ]


def _arm_rows(
    *, since: datetime | None, until: datetime, experiment_key: str | None = None
) -> QuerySet[ArmRollup]:
    """Non-shadow :class:`ArmRollup` rows (hour x experiment x arm x status) of a range."""
    rows = ArmRollup.objects.filter(bucket_start__lt=until, is_shadow=False)
    if since is not None:
        rows = rows.filter(bucket_start__gte=since)
    if experiment_key:
        rows = rows.filter(experiment_key=experiment_key)
    return rows.order_by()


def error_totals(
    *, since: datetime | None, until: datetime, experiment_key: str | None = None
) -> Totals:
    """Requests and errors of non-shadow calls in ``[since, until)`` from the hourly
    ArmRollup rows (one aggregate); used for error-rate baselines."""
    rows = _arm_rows(since=since, until=until, experiment_key=experiment_key)
    return Totals().add(rows.aggregate(requests=Sum("n"), errors=Sum("n", filter=Q(status=_ERROR))))


# --- Histograms -------------------------------------------------------------------------


@dataclass
class Histograms:
    """Summed histograms of a window: overall, per series hour, and per experiment arm."""

    latency: list[int] = field(default_factory=lambda: [0] * LATENCY_HIST_SIZE)
    confidence: list[int] = field(default_factory=lambda: [0] * CONFIDENCE_HIST_SIZE)
    latency_by_hour: dict[datetime, list[int]] = field(default_factory=dict)
    latency_by_arm: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def parse_hists(texts: list[str], size: int):
    """A (rows x size) integer array from JSON list texts.

    One C-level parse of the joined texts instead of a ``json.loads`` per row (about five
    times faster on 100,000 rows); rows of another length fall back to a per-row parse.
    """
    if not texts:
        return np.zeros((0, size), dtype=np.int64)
    joined = ",".join(text.strip()[1:-1] for text in texts)
    values = None
    with warnings.catch_warnings():
        # Malformed text (e.g. an empty list) makes numpy raise, or on older versions warn
        # and stop early; the size check below catches the latter.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            values = np.fromstring(joined, sep=",", dtype=np.int64)
        except ValueError:
            values = None
    if values is not None and values.size == len(texts) * size:
        return values.reshape(len(texts), size)
    matrix = np.zeros((len(texts), size), dtype=np.int64)
    for index, text in enumerate(texts):
        counts = json.loads(text) or []
        width = min(len(counts), size)
        if width:
            matrix[index, :width] = counts[:width]
    return matrix


#: ArmRollup columns read by :func:`hours_and_histograms`, named as Totals.add expects.
_HOUR_SUMS = {
    "requests": "n",
    "escalated": "escalated_n",
    "cost_usd": "cost_usd_sum",
    "baseline_cost_usd": "baseline_cost_usd_sum",
    "input_tokens": "input_tokens_sum",
    "output_tokens": "output_tokens_sum",
    "latency_n": "latency_n",
    "latency_ms_sum": "latency_ms_sum",
    "confidence_n": "confidence_n",
    "confidence_sum": "confidence_sum",
    "quality_n": "quality_n",
    "quality_sum": "quality_sum",
    "quality_sumsq": "quality_sumsq",
}


def hours_and_histograms(
    *, since: datetime | None, until: datetime, experiment_key: str | None = None
) -> tuple[list[dict], Histograms]:
    """The series rows (sums per hour, oldest first) and the summed histograms of
    non-shadow calls in ``[since, until)``, from one read of the hourly :class:`ArmRollup`
    rows (hour x experiment x arm x status x shadow: a few rows per hour, however many
    models and task types). Histograms are read as text and summed with numpy."""
    columns = list(_HOUR_SUMS.values())
    rows = list(
        _arm_rows(since=since, until=until, experiment_key=experiment_key)
        .annotate(
            latency_text=Cast("latency_hist", TextField()),
            confidence_text=Cast("confidence_hist", TextField()),
        )
        .values_list(
            "bucket_start",
            "experiment_key",
            "arm_key",
            "status",
            "latency_text",
            "confidence_text",
            *columns,
        )
    )
    hours: dict[datetime, Totals] = {}
    for row in rows:
        values = dict(zip(_HOUR_SUMS, row[6:], strict=True))
        if row[3] == _ERROR:
            values["errors"] = values["requests"]
        hours.setdefault(row[0], Totals()).add(values)
    series = [{"bucket_start": hour, **totals.as_row()} for hour, totals in sorted(hours.items())]
    result = Histograms()
    if not rows:
        return series, result
    latency = parse_hists([row[4] or "[]" for row in rows], LATENCY_HIST_SIZE)
    confidence = parse_hists([row[5] or "[]" for row in rows], CONFIDENCE_HIST_SIZE)
    result.latency = latency.sum(axis=0).tolist()
    result.confidence = confidence.sum(axis=0).tolist()
    for name, keys in (
        ("latency_by_hour", [row[0] for row in rows]),
        ("latency_by_arm", [(row[1], row[2]) for row in rows]),
    ):
        groups: dict = {}
        index = np.fromiter((groups.setdefault(key, len(groups)) for key in keys), dtype=np.int64)
        sums = np.zeros((len(groups), LATENCY_HIST_SIZE), dtype=np.int64)
        np.add.at(sums, index, latency)
        setattr(result, name, {key: sums[position].tolist() for key, position in groups.items()})
    return series, result


def latency_quantile(counts: list[int], q: float) -> float | None:
    return hist_quantile(counts, LATENCY_HIST_EDGES_MS, q, top=LATENCY_HIST_TOP_MS)


def confidence_distribution(counts: list[int]) -> list[dict]:
    """The confidence histogram as buckets ``{low, high, count}``."""
    edges = list(CONFIDENCE_HIST_EDGES) + [CONFIDENCE_HIST_TOP]
    return [
        {"low": edges[index], "high": edges[index + 1], "count": int(count)}
        for index, count in enumerate(counts)
    ]


# --- Folding grouped rows into the dashboard ---------------------------------------------


def breakdown(rows: Iterable[dict], field_name: str, *, requests_total: int) -> dict[str, dict]:
    """Figures per value of one cube dimension, largest first; "" reads "unknown"."""
    groups: dict[str, Totals] = defaultdict(Totals)
    for row in rows:
        groups[row[field_name] or "unknown"].add(row)
    ordered = sorted(groups.items(), key=lambda item: (-item[1].requests, item[0]))
    return {
        name: {
            **totals.figures(),
            "share": totals.requests / requests_total if requests_total else 0.0,
        }
        for name, totals in ordered
    }


def arm_breakdown(
    rows: Iterable[dict], *, requests_total: int, hists: Histograms | None = None
) -> dict[str, dict]:
    """Figures per experiment arm ("experiment/arm"); calls outside experiments are "none"."""
    groups: dict[tuple[str, str], Totals] = defaultdict(Totals)
    strategies: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        key = (row["experiment_key"], row["arm_key"])
        groups[key].add(row)
        if row["strategy"]:
            strategies[key].add(row["strategy"])
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] == "", item[0]))
    result = {}
    for (experiment_key, arm_key), totals in ordered:
        label = f"{experiment_key}/{arm_key}" if experiment_key else "none"
        latency = (hists.latency_by_arm.get((experiment_key, arm_key)) if hists else None) or []
        result[label] = {
            **totals.figures(),
            "share": totals.requests / requests_total if requests_total else 0.0,
            "experiment_key": experiment_key,
            "arm_key": arm_key,
            "strategy": ",".join(sorted(strategies[(experiment_key, arm_key)])),
            "latency_p95_ms": latency_quantile(latency, 0.95) if latency else None,
        }
    return result


def series(rows: list[dict], *, granularity: str, hists: Histograms | None = None) -> list[dict]:
    """The time series: one point per hour, or per UTC day (hourly and daily rows merged);
    latency percentiles from the hourly histograms of each point's hours."""
    buckets: dict[datetime, Totals] = {}
    for row in rows:
        start = row["bucket_start"].astimezone(UTC)
        if granularity == "day":
            start = start.replace(hour=0)
        buckets.setdefault(start, Totals()).add(row)
    latency: dict[datetime, list[int]] = {}
    for hour, counts in hists.latency_by_hour.items() if hists else ():
        start = hour.astimezone(UTC)
        if granularity == "day":
            start = start.replace(hour=0)
        merged = latency.setdefault(start, [0] * LATENCY_HIST_SIZE)
        for index, count in enumerate(counts):
            merged[index] += count
    points = []
    for start, totals in sorted(buckets.items()):
        counts = latency.get(start) or []
        points.append(
            {
                "bucket_start": start.isoformat(),
                **totals.figures(),
                "latency_p50_ms": latency_quantile(counts, 0.5) if counts else None,
                "latency_p95_ms": latency_quantile(counts, 0.95) if counts else None,
            }
        )
    return points


def overview(totals: Totals, hists: Histograms, shadow: Totals) -> dict:
    """The headline figures (names as in the user's guide where it names them)."""
    figures = totals.figures()
    return {
        "total_requests": totals.requests,
        "successful_requests": totals.requests - totals.errors,
        "failed_requests": totals.errors,
        "total_cost_usd": figures["cost_usd"],
        "baseline_cost_usd": figures["baseline_cost_usd"],
        "savings_usd": figures["savings_usd"],
        "cost_savings_percentage": figures["cost_savings_percentage"],
        "cost_per_request_usd": figures["cost_per_request_usd"],
        "avg_confidence": figures["avg_confidence"],
        "escalation_rate": figures["escalation_rate"],
        "error_rate": figures["error_rate"],
        "avg_latency_ms": figures["avg_latency_ms"],
        "latency_p50_ms": latency_quantile(hists.latency, 0.5),
        "latency_p95_ms": latency_quantile(hists.latency, 0.95),
        "avg_quality": figures["avg_quality"],
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "shadow_requests": shadow.requests,
        "shadow_cost_usd": usd(shadow.cost_usd),
    }


@dataclass(frozen=True)
class DashboardMetrics:
    """Everything the dashboard shows except the alerts; ``as_dict()`` is JSON-ready."""

    window: TimeWindow
    experiment_key: str | None
    totals: Totals
    overview: dict
    breakdowns: dict[str, dict]
    by_arm: dict[str, dict]
    granularity: str
    timeseries: list[dict]
    confidence_distribution: list[dict]
    cube_rows: list[dict]
    histograms: Histograms

    def as_dict(self) -> dict:
        return {
            "window": {
                "key": self.window.key,
                "label": self.window.label,
                "since": self.window.since.isoformat() if self.window.since else None,
                "until": self.window.until.isoformat(),
            },
            "experiment": self.experiment_key,
            "overview": self.overview,
            **self.breakdowns,
            "by_arm": self.by_arm,
            "timeseries_granularity": self.granularity,
            "timeseries": self.timeseries,
            "confidence_distribution": self.confidence_distribution,
        }


def granularity_of(window: TimeWindow) -> str:
    """ "hour" for windows (or, for all time, data) spanning at most 48 hours, else "day"."""
    if window.since is not None:
        return "hour" if window.length <= HOURLY_SERIES_MAX else "day"
    first = CallRollup.objects.aggregate(first=Min("bucket_start"))["first"]
    return "hour" if first is None or window.until - first <= HOURLY_SERIES_MAX else "day"


def dashboard_metrics(
    *,
    window: str | timedelta | TimeWindow | None = None,
    experiment_key: str | None = None,
    now: datetime | None = None,
) -> DashboardMetrics:
    """Overview, breakdowns, time series and distributions of a window.

    A daily window first brings the compacted days in step (``daily_rollups_sync``: two
    small queries when nothing changed) and reads the cube of closed days from the daily
    rows, the rest from the hourly rows (one query per table); the series and histograms
    come from one read of the hourly ArmRollup rows.
    """
    resolved = window_resolve(window, now=now)
    granularity = granularity_of(resolved)
    boundary = None
    if granularity == "day":
        daily_rollups_sync(now=now)
        boundary = compacted_until(now)
    plan = read_plan(resolved.since, resolved.until, compacted_until=boundary)
    cube_rows = cube(plan=plan, experiment_key=experiment_key)
    served = [row for row in cube_rows if not row["is_shadow"]]
    totals = totals_of(served)
    shadow = totals_of(row for row in cube_rows if row["is_shadow"])
    hour_rows, hists = hours_and_histograms(
        since=resolved.since, until=resolved.until, experiment_key=experiment_key
    )
    points = series(hour_rows, granularity=granularity, hists=hists)
    return DashboardMetrics(
        window=resolved,
        experiment_key=experiment_key,
        totals=totals,
        overview=overview(totals, hists, shadow),
        breakdowns={
            name: breakdown(served, field_name, requests_total=totals.requests)
            for name, field_name in BREAKDOWNS.items()
        },
        by_arm=arm_breakdown(served, requests_total=totals.requests, hists=hists),
        granularity=granularity,
        timeseries=points,
        confidence_distribution=confidence_distribution(hists.confidence),
        cube_rows=served,
        histograms=hists,
    )
