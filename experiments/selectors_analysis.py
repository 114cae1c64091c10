"""Reads for the analysis of experiment phases, shared by the report and the alerts.

- per arm, the call-level sums and the summed latency histograms of the phase's hourly
  :class:`~experiments.models.ArmRollup` rows (:func:`arm_call_sums`,
  :func:`arm_latency_hists`), for one experiment (the report) or several at once (the
  alerts: one query however many experiments);
- per phase and arm, the assigned units (:func:`assigned_units`, the SRM test's counts);
- per arm, the sums over the per-unit rollup: one SQL statement whose ``GROUP BY
  arm_key`` runs over the :class:`~experiments.models.UnitRollup` rows of a phase (one row
  per unit), so the analysis gets ``n_units, sum x, sum y, sum x^2, sum y^2, sum xy`` per
  arm and metric without a Python loop over units (:func:`unit_sums_by_phases`).
  ``unit_moments_by_arm`` adds each unit's pre-exposure values (CUPED's covariate) with a
  join to the unit's earlier calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum

from experiments.analysis.metrics import UNIT_RATIOS
from experiments.analysis.sums import SUM_SUFFIXES, CallSums, unit_statistics
from experiments.models import ArmRollup, Assignment, Phase, RoutedCall, UnitRollup
from experiments.stats.cuped import MomentSums
from experiments.stats.histograms import LATENCY_HIST_SIZE
from experiments.stats.ratio import RatioSums

#: The ArmRollup sums of :class:`CallSums` (``CallSums.add_row`` reads these names).
ROLLUP_SUMS = {
    name: Sum(name)
    for name in (
        "n",
        "escalated_n",
        "cost_usd_sum",
        "cost_usd_sumsq",
        "baseline_cost_usd_sum",
        "quality_n",
        "quality_sum",
        "quality_sumsq",
        "confidence_n",
        "confidence_sum",
        "confidence_sumsq",
        "latency_n",
        "latency_ms_sum",
        "latency_ms_sumsq",
    )
}


@dataclass(frozen=True)
class PhaseWindow:
    """The rollup hours of an experiment's current phase: ``since`` (the phase's first
    hour; None = from the first) up to ``until`` inclusive."""

    experiment_key: str
    since: datetime | None
    until: datetime


def phase_rollups(windows: Sequence[PhaseWindow]) -> QuerySet[ArmRollup]:
    """The non-shadow, in-experiment ArmRollup rows of the windows (none for none)."""
    if not windows:
        return ArmRollup.objects.none()
    condition = Q()
    for window in windows:
        part = Q(experiment_key=window.experiment_key, bucket_start__lte=window.until)
        if window.since is not None:
            part &= Q(bucket_start__gte=window.since)
        condition |= part
    return ArmRollup.objects.filter(condition, is_shadow=False).exclude(arm_key="").order_by()


def arm_call_sums(windows: Sequence[PhaseWindow]) -> dict[tuple[str, str], CallSums]:
    """Per (experiment key, arm key), the call-level sums of the windows (one query)."""
    sums: dict[tuple[str, str], CallSums] = {}
    rows = (
        phase_rollups(windows).values("experiment_key", "arm_key", "status").annotate(**ROLLUP_SUMS)
    )
    for row in rows:
        sums.setdefault((row["experiment_key"], row["arm_key"]), CallSums()).add_row(row)
    return sums


def arm_latency_hists(windows: Sequence[PhaseWindow]) -> dict[tuple[str, str], list[int]]:
    """Per (experiment key, arm key), the latency histograms of successful calls summed
    bucket-wise. One query returns the (few, per arm and hour) ArmRollup histograms;
    numpy adds them."""
    sums: dict[tuple[str, str], np.ndarray] = {}
    rows = (
        phase_rollups(windows)
        .filter(status=RoutedCall.Status.SUCCESS, latency_n__gt=0)
        .values_list("experiment_key", "arm_key", "latency_hist")
    )
    for experiment_key, arm_key, hist in rows:
        if not hist:
            continue
        counts = np.asarray(hist[:LATENCY_HIST_SIZE], dtype=np.int64)
        into = sums.setdefault(
            (experiment_key, arm_key), np.zeros(LATENCY_HIST_SIZE, dtype=np.int64)
        )
        into[: counts.size] += counts
    return {key: counts.tolist() for key, counts in sums.items()}


def _column(name: str) -> str:
    return UnitRollup._meta.get_field(name).column


def _unit_aggregates(metrics: Sequence[str] = tuple(UNIT_RATIOS)) -> list[str]:
    """``SUM(x)``, ``SUM(y)``, ``SUM(x*x)``, ``SUM(y*y)``, ``SUM(x*y)`` per metric, named
    ``<metric>__sx`` ... (column names are the model's, constants)."""
    parts = []
    for metric in metrics:
        x_field, y_field = UNIT_RATIOS[metric]
        x = f"CAST({_column(x_field)} AS DOUBLE PRECISION)"
        y = f"CAST({_column(y_field)} AS DOUBLE PRECISION)"
        expressions = (x, y, f"{x} * {x}", f"{y} * {y}", f"{x} * {y}")
        for suffix, expression in zip(SUM_SUFFIXES, expressions, strict=True):
            parts.append(f"SUM({expression}) AS {metric}__{suffix}")
    return parts


def assigned_units(phases: Sequence[Phase]) -> dict[tuple[int, int], int]:
    """Per (phase id, arm id), the units assigned in the phase: the SRM test's counts, for
    the report (one phase) and the alerts (every running experiment's current phase).

    At most two queries, grouped by ids (no join). A first phase is its experiment's only
    one, so it is counted by experiment: the (experiment, arm) index answers that on its
    own, several times faster than filtering 100,000 rows by phase."""
    first = {phase.experiment_id: phase.pk for phase in phases if phase.number == 1}
    later = [phase.pk for phase in phases if phase.number != 1]
    units: dict[tuple[int, int], int] = {}
    for field, values in (("experiment_id", list(first)), ("phase_id", later)):
        if not values:
            continue
        counts = (
            Assignment.objects.filter(**{f"{field}__in": values})
            .values(field, "arm_id")
            .annotate(units=Count("id"))
            .order_by()
        )
        for row in counts:
            phase_id = row["phase_id"] if field == "phase_id" else first[row[field]]
            units[(phase_id, row["arm_id"])] = row["units"]
    return units


def unit_sums_by_phases(
    phases: Sequence[tuple[str, int]], *, metrics: Sequence[str] = tuple(UNIT_RATIOS)
) -> dict[tuple[str, int], dict[str, dict[str, RatioSums]]]:
    """Per (experiment key, phase id), per arm, per metric of ``metrics`` (default: all),
    the RatioSums over the phase's units (one query however many phases; a phase without
    unit rows is absent). Each metric costs five sums per unit row: the alerts ask only
    for the ones their guardrails test."""
    if not phases:
        return {}
    table = UnitRollup._meta.db_table
    key, phase, arm = _column("experiment_key"), _column("phase_id"), _column("arm_key")
    where = " OR ".join([f"({key} = %s AND {phase} = %s)"] * len(phases))
    sql = (
        f"SELECT {key} AS experiment_key, {phase} AS phase_id, "  # noqa: S608 - constants
        f"{arm} AS arm_key, COUNT(*) AS units, {', '.join(_unit_aggregates(metrics))} "
        f"FROM {table} WHERE {where} GROUP BY {key}, {phase}, {arm}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for pair in phases for value in pair])
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, record, strict=True)) for record in cursor.fetchall()]
    out: dict[tuple[str, int], dict[str, dict[str, RatioSums]]] = {}
    for row in rows:
        by_arm = out.setdefault((row["experiment_key"], int(row["phase_id"])), {})
        by_arm[row["arm_key"]] = unit_statistics(row)
    return out


def unit_sums_by_arm(*, experiment_key: str, phase_id: int) -> dict[str, dict[str, RatioSums]]:
    """Per arm, per metric, the RatioSums over one phase's units (one query)."""
    return unit_sums_by_phases([(experiment_key, phase_id)]).get((experiment_key, phase_id), {})


#: metric -> (pre-period x, pre-period y) as SQL over the unit's earlier calls ``c``.
_PRE_VALUES = {
    "cost_per_request": ("COUNT(c.id)", "SUM(CAST(c.cost_usd AS DOUBLE PRECISION))"),
    "quality": ("COUNT(c.final_score)", "SUM(c.final_score)"),
    "confidence": ("COUNT(c.confidence)", "SUM(c.confidence)"),
    "latency_ms": ("COUNT(c.latency_ms)", "SUM(c.latency_ms)"),
    "escalation_rate": ("COUNT(c.id)", "SUM(CASE WHEN c.escalated THEN 1 ELSE 0 END)"),
    "error_rate": ("COUNT(c.id)", "SUM(CASE WHEN c.status = 'error' THEN 1 ELSE 0 END)"),
}


def _lookback_bound() -> str:
    first = f"u.{_column('first_exposure_at')}"
    if connection.vendor == "postgresql":
        return f"{first} - (%s * INTERVAL '1 day')"
    return f"datetime({first}, '-' || %s || ' days')"


def unit_moments_by_arm(
    *, experiment_key: str, phase_id: int, lookback_days: int
) -> dict[str, dict[str, MomentSums]]:
    """Per arm, per metric, the :class:`MomentSums` of ``(x, y, pre_x, pre_y)`` over the
    phase's units, ``pre`` being the unit's finished, non-shadow calls in the
    ``lookback_days`` before its first exposure (0 for units without any: GrowthBook's
    rule). One statement."""
    units, calls = UnitRollup._meta.db_table, RoutedCall._meta.db_table
    pre_columns = ", ".join(
        f"{x} AS {metric}__px, {y} AS {metric}__py" for metric, (x, y) in _PRE_VALUES.items()
    )
    per_unit = []
    for metric, (x_field, y_field) in UNIT_RATIOS.items():
        per_unit += [
            f"CAST(u.{_column(x_field)} AS DOUBLE PRECISION) AS {metric}__x",
            f"CAST(u.{_column(y_field)} AS DOUBLE PRECISION) AS {metric}__y",
            f"CAST(COALESCE(pre.{metric}__px, 0) AS DOUBLE PRECISION) AS {metric}__px",
            f"CAST(COALESCE(pre.{metric}__py, 0) AS DOUBLE PRECISION) AS {metric}__py",
        ]
    aggregates = []
    for metric in UNIT_RATIOS:
        names = [f"{metric}__{v}" for v in ("x", "y", "px", "py")]
        aggregates += [f"SUM({name}) AS s_{name}" for name in names]
        for i, left in enumerate(names):
            for right in names[i:]:
                aggregates.append(f"SUM({left} * {right}) AS p_{left}_{right}")
    where = f"u.{_column('experiment_key')} = %s AND u.{_column('phase_id')} = %s"
    sql = (
        f"WITH pre AS (SELECT u.id AS unit_row, {pre_columns} "  # noqa: S608 - constants
        f"FROM {units} u JOIN {calls} c ON c.unit_id = u.{_column('unit_id')} "
        f"AND c.created_at < u.{_column('first_exposure_at')} "
        f"AND c.created_at >= {_lookback_bound()} "
        f"WHERE {where} AND c.is_shadow = %s AND c.status IN (%s, %s) GROUP BY u.id), "
        f"per_unit AS (SELECT u.{_column('arm_key')} AS arm_key, {', '.join(per_unit)} "
        f"FROM {units} u LEFT JOIN pre ON pre.unit_row = u.id WHERE {where}) "
        f"SELECT arm_key, COUNT(*) AS units, {', '.join(aggregates)} "
        "FROM per_unit GROUP BY arm_key"
    )
    params = [
        lookback_days,
        experiment_key,
        phase_id,
        False,
        RoutedCall.Status.SUCCESS,
        RoutedCall.Status.ERROR,
        experiment_key,
        phase_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, record, strict=True)) for record in cursor.fetchall()]
    return {row["arm_key"]: _moments(row) for row in rows}


def _moments(row: dict) -> dict[str, MomentSums]:
    out = {}
    for metric in UNIT_RATIOS:
        names = [f"{metric}__{v}" for v in ("x", "y", "px", "py")]
        sums = tuple(float(row[f"s_{name}"] or 0.0) for name in names)
        products = [[0.0] * 4 for _ in range(4)]
        for i, left in enumerate(names):
            for j in range(i, 4):
                value = float(row[f"p_{left}_{names[j]}"] or 0.0)
                products[i][j] = products[j][i] = value
        out[metric] = MomentSums(int(row["units"]), sums, tuple(tuple(r) for r in products))
    return out
