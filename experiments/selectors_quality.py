"""Reads of quality signals: per-arm unit-level sums, coverage, quality over time.

Everything is aggregated by the database (``GROUP BY`` unit, then over units); no Python
loop over signals or calls.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate

from experiments.models import Arm, ArmRollup, Experiment, QualitySignal, RoutedCall
from experiments.stats.ratio import RatioSums


def _sums_sql(*, by_phase: bool, phases: int = 0) -> str:
    """One phase (``by_phase``), every phase of the experiment, or (``phases`` > 0) per
    phase of that many phase ids (then grouped by phase too, any experiment)."""
    quote = connection.ops.quote_name
    signal, call, arm = (
        quote(QualitySignal._meta.db_table),
        quote(RoutedCall._meta.db_table),
        quote(Arm._meta.db_table),
    )
    # Signals carry their call's experiment and phase (indexed with the status): the read
    # is one index range of signals, each call then looked up by its key.
    if phases:
        where = f"s.phase_id IN ({', '.join(['%s'] * phases)}) AND s.status = %s "
    else:
        where = "s.experiment_id = %s AND s.status = %s " + (
            "AND s.phase_id = %s " if by_phase else ""
        )
    phase = "phase_id, " if phases else ""
    inner_phase = "s.phase_id AS phase_id, " if phases else ""
    group_phase = "s.phase_id, " if phases else ""
    # Table names are the models' own (constants); every value is a parameter.
    return (
        f"SELECT {phase}source, arm_key, COUNT(*), SUM(x), SUM(y), SUM(x * x), SUM(y * y), SUM(x * y) "  # noqa: S608
        f"FROM (SELECT {inner_phase}s.source AS source, "
        f"a.{quote('key')} AS arm_key, "
        "c.unit_id AS unit_id, COUNT(*) * 1.0 AS x, SUM(s.value) AS y "
        f"FROM {signal} s JOIN {call} c ON c.id = s.call_id JOIN {arm} a ON a.id = c.arm_id "
        f"WHERE {where}"
        f"GROUP BY {group_phase}s.source, a.{quote('key')}, c.unit_id) units "
        f"GROUP BY {phase}source, arm_key"
    )


def _ratio_sums(n, *sums) -> RatioSums:
    return RatioSums(int(n), *(float(value or 0.0) for value in sums))


def quality_sums_by_source(
    *, experiment: Experiment, phase_id: int | None = None
) -> dict[str, dict[str, RatioSums]]:
    """``{source: {arm_key: RatioSums}}``: per source and arm, the unit-level sums of the
    signals (``x`` = signals of the unit's calls in that arm, ``y`` = their values),
    optionally of one phase. One query: GROUP BY unit, then over units."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sums_sql(by_phase=phase_id is not None),
            [experiment.pk, QualitySignal.Status.OK] + ([phase_id] if phase_id is not None else []),
        )
        rows = cursor.fetchall()
    out: dict[str, dict[str, RatioSums]] = defaultdict(dict)
    for source, arm_key, *sums in rows:
        out[source][arm_key] = _ratio_sums(*sums)
    return dict(out)


def quality_sums_by_phase(
    *, phase_ids: list[int], source_by_phase: dict[int, str]
) -> dict[int, dict[str, RatioSums]]:
    """``{phase_id: {arm_key: RatioSums}}``: per phase, the unit-level sums of the signals
    of that phase's source (``source_by_phase``), as :func:`quality_sums` gives them for
    one phase; one query for all the phases (the alerts of every running experiment)."""
    if not phase_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _sums_sql(by_phase=False, phases=len(phase_ids)),
            [*phase_ids, QualitySignal.Status.OK],
        )
        rows = cursor.fetchall()
    out: dict[int, dict[str, RatioSums]] = defaultdict(dict)
    for phase_id, source, arm_key, *sums in rows:
        if source_by_phase.get(phase_id) == source:
            out[phase_id][arm_key] = _ratio_sums(*sums)
    return dict(out)


def quality_sums(
    *, experiment: Experiment, source: str, phase_id: int | None = None
) -> dict[str, RatioSums]:
    """Per arm key, the unit-level sums of ``source`` signals (one query)."""
    return quality_sums_by_source(experiment=experiment, phase_id=phase_id).get(source, {})


@dataclass(frozen=True)
class SignalCoverage:
    """How many of an arm's finished calls carry a signal of one source, and its cost."""

    calls: int
    signals: int
    errors: int
    cost_usd: Decimal
    simulated: int

    @property
    def coverage(self) -> float:
        return self.signals / self.calls if self.calls else 0.0

    def as_dict(self) -> dict:
        return {
            "calls": self.calls,
            "signals": self.signals,
            "errors": self.errors,
            "coverage": self.coverage,
            "cost_usd": float(self.cost_usd),
            "simulated": self.simulated,
        }


def arm_calls(
    *, experiment: Experiment, window_start: datetime | None, window_end: datetime
) -> dict[str, int]:
    """Finished calls per arm in the window, shadow calls included (signals of shadow
    pairs sit on either side): summed hourly rollups, one query."""
    rows = ArmRollup.objects.filter(experiment_key=experiment.key, bucket_start__lte=window_end)
    if window_start is not None:
        rows = rows.filter(bucket_start__gte=window_start)
    return dict(
        rows.exclude(arm_key="")
        .order_by()
        .values("arm_key")
        .annotate(calls=Sum("n"))
        .values_list("arm_key", "calls")
    )


def quality_coverage(
    *, experiment: Experiment, calls_by_arm: dict[str, int], phase_id: int | None = None
) -> dict[str, dict[str, SignalCoverage]]:
    """``{source: {arm_key: SignalCoverage}}`` for every source and the arms of
    ``calls_by_arm`` (each arm's finished calls, e.g. from the rollups): one query."""
    signals = QualitySignal.objects.filter(experiment=experiment)
    if phase_id is not None:
        signals = signals.filter(phase_id=phase_id)
    counted: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in signals.values("source", "call__arm__key").annotate(
        signals=Count("id", filter=Q(status=QualitySignal.Status.OK)),
        errors=Count("id", filter=Q(status=QualitySignal.Status.ERROR)),
        cost=Sum("cost_usd"),
        simulated=Count("id", filter=Q(simulated=True)),
    ):
        counted[row["source"]][row["call__arm__key"]] = row
    out: dict[str, dict[str, SignalCoverage]] = {}
    for source in QualitySignal.Source.values:
        out[source] = {}
        for key in calls_by_arm:
            row = counted[source].get(key, {})
            out[source][key] = SignalCoverage(
                calls=calls_by_arm.get(key, 0),
                signals=row.get("signals", 0),
                errors=row.get("errors", 0),
                cost_usd=row.get("cost") or Decimal("0"),
                simulated=row.get("simulated", 0),
            )
    return out


def quality_by_day(*, experiment: Experiment, source: str) -> list[dict]:
    """Mean signal value per arm and day: ``[{day, arm, n, mean}]`` (one query)."""
    rows = (
        QualitySignal.objects.filter(
            experiment=experiment, source=source, status=QualitySignal.Status.OK
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "call__arm__key")
        .annotate(n=Count("id"), total=Sum("value"))
        .order_by("day", "call__arm__key")
    )
    return [
        {
            "day": row["day"].isoformat(),
            "arm": row["call__arm__key"],
            "n": row["n"],
            "mean": row["total"] / row["n"],
        }
        for row in rows
    ]


def judge_feedback_agreement(*, experiment: Experiment) -> dict:
    """Calls with both a judge verdict and user feedback: how often they agree on the side
    of 0.5 (both good or both bad; a judge tie counts as agreeing with either)."""
    judge = QualitySignal.objects.filter(
        call=OuterRef("call"), source=QualitySignal.Source.JUDGE, status=QualitySignal.Status.OK
    )
    both = (
        QualitySignal.objects.filter(
            experiment=experiment,
            source=QualitySignal.Source.FEEDBACK,
            status=QualitySignal.Status.OK,
        )
        .filter(Exists(judge))
        .annotate(judge_value=Subquery(judge.values("value")[:1]))
    )
    counts = both.aggregate(
        n=Count("id"),
        agree=Count(
            "id",
            filter=Q(judge_value=0.5)
            | Q(judge_value__gt=0.5, value__gte=0.5)
            | Q(judge_value__lt=0.5, value__lt=0.5),
        ),
    )
    n = counts["n"] or 0
    return {"n": n, "agree": counts["agree"] or 0, "rate": (counts["agree"] / n) if n else None}


#: /v1 calls are public by their completion id; their record's key is "openai:" + that id.
OPENAI_CALL_PREFIX = "chatcmpl-"
_CALL_PK_MAX = 2**63 - 1


def routed_call_by_public_id(*, public_id: str) -> RoutedCall | None:
    """The call a client names: the routing API's numeric call id, or a /v1 completion id
    (``chatcmpl-...``, the ``x-router-call-id`` header of /v1). None if there is none."""
    public_id = public_id.strip()
    calls = RoutedCall.objects.select_related("experiment", "arm")
    if public_id.isdigit() and 0 < int(public_id) <= _CALL_PK_MAX:
        return calls.filter(pk=int(public_id)).first()
    if public_id.startswith(OPENAI_CALL_PREFIX):
        return calls.filter(idempotency_key=f"openai:{public_id}").first()
    return None


def quality_totals(*, experiment: Experiment | None = None) -> dict[str, dict]:
    """Per source: signals, errors, mean value, what measuring cost, simulated signals
    (one query), for one experiment or every call."""
    signals = QualitySignal.objects.all()
    if experiment is not None:
        signals = signals.filter(experiment=experiment)
    rows = {
        row["source"]: row
        for row in signals.values("source").annotate(
            signals=Count("id", filter=Q(status=QualitySignal.Status.OK)),
            errors=Count("id", filter=Q(status=QualitySignal.Status.ERROR)),
            total=Sum("value"),
            cost=Sum("cost_usd"),
            simulated=Count("id", filter=Q(simulated=True)),
        )
    }
    out = {}
    for source in QualitySignal.Source.values:
        row = rows.get(source, {})
        n = row.get("signals", 0)
        out[source] = {
            "signals": n,
            "errors": row.get("errors", 0),
            "mean": (row["total"] / n) if n else None,
            "cost_usd": float(row.get("cost") or 0),
            "simulated": row.get("simulated", 0),
        }
    return out


__all__ = [
    "OPENAI_CALL_PREFIX",
    "arm_calls",
    "quality_totals",
    "routed_call_by_public_id",
    "SignalCoverage",
    "judge_feedback_agreement",
    "quality_by_day",
    "quality_coverage",
    "quality_sums",
    "quality_sums_by_phase",
    "quality_sums_by_source",
]
