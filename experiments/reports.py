"""Winner reports: should the treatment (smart routing) take all traffic?

``experiment_report(experiment=..., now=None)`` answers with a decision, the evidence
and the user's success-criteria checklist; ``report_export_json(experiment=...)`` writes
the same report as versioned JSON that holds every test's inputs, so each number can be
recomputed from the file alone (``experiments.stats`` functions, no database).

Where the numbers come from (all aggregated by the database, never a Python loop over
calls):

- per arm sufficient statistics: one ``SUM ... GROUP BY arm_key, status`` over the
  hourly :class:`~experiments.models.ArmRollup` rows of the current phase (the
  per-arm grain of the rollups: a few rows per arm and hour, however many calls);
- per arm per day: the same grouped by ``TruncDate(bucket_start)`` (cumulative effects);
- latency histograms per arm: those rows' fixed-bucket histograms summed (p95);
- sample-ratio mismatch: ``COUNT(*) GROUP BY arm`` over the phase's assignments (units);
- shadow pairs: the differences of the most recent 5,000 paired calls, by a SQL self-join;
- per unit: one ``GROUP BY arm_key`` over the phase's :class:`~experiments.models.UnitRollup`
  rows (``experiments.selectors_analysis``), plus the pre-exposure join with CUPED.
- quality signals: per source and arm the unit-level sums of the phase's signals (one
  ``GROUP BY unit`` then over units), their coverage and cost
  (``experiments.quality_report``, ``experiments.selectors_quality``).

============== ================================================= =====================
report part    measured by                                       role
============== ================================================= =====================
quality        the experiment's quality signal (agreement floor, guardrail
               judge win rate vs 0.5 - margin, feedback drop)
score level    ``final_score`` (test ``quality:<arm>``)           secondary metric only
error_rate     errored / finished calls                          guardrail
latency_p95    histogram p95 of successful calls                 guardrail
cost/request   cost per finished call                            primary metric
============== ================================================= =====================

The statistics are ``experiments.analysis`` (metric definitions, tests, guardrails
including the quality check of quality signals, SRM, decision); this module loads the sums and assembles the report. The analysis unit is the
experiment's unit (delta method over per-unit sums, docs/statistics.md) when the phase
has unit rows, else the call (request-level experiments, data recorded before the unit
rollup). The decision rule is :func:`experiments.analysis.decision.decide`.

With ``experiment.sequential_testing`` every p-value and interval the decision uses is
always-valid (confidence sequences), so the report can be read every day.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models.functions import TruncDate
from django.utils import timezone

from experiments import stats
from experiments.analysis import comparisons, srm
from experiments.analysis.comparisons import (  # noqa: F401 - the report's public names
    DECISION_POWER,
    adjust_families,
    compare_cuped_metric,
    compare_metric,
    compare_ratio_metric,
    time_to_decision,
)
from experiments.analysis.decision import (  # noqa: F401 - the report's public names
    GUARDRAIL_FAILED,
    INVALID,
    NO_WINNER_YET,
    WINNER,
    decide,
)
from experiments.analysis.figures import share
from experiments.analysis.guardrails import (  # noqa: F401 - the report's public names
    LATENCY_QUANTILE,
    guardrail_checks,
    latency_quantile,
)
from experiments.analysis.metrics import (
    CALL,
    METRICS,
    PRIMARY_METRIC,
    UNIT,
    UNIT_MEANS,
    metric_spec,
)
from experiments.analysis.sums import (
    CallSums,
    empty_unit_sums,
    mean_stats,
    rate_stats,
    unit_summary,
)
from experiments.models import Arm, ArmRollup, Experiment, Phase, RoutedCall
from experiments.quality_report import (
    QualityData,
    quality_data_load,
    quality_platform_settings,
    quality_section,
)
from experiments.rollups import hour_start
from experiments.selectors_analysis import (
    ROLLUP_SUMS,
    PhaseWindow,
    arm_call_sums,
    arm_latency_hists,
    assigned_units,
    phase_rollups,
    unit_moments_by_arm,
    unit_sums_by_arm,
)
from experiments.stats import sequential as stats_sequential
from experiments.stats.cuped import MomentSums
from experiments.stats.histograms import (
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
    LATENCY_HIST_TOP_MS,
)
from experiments.stats.ratio import RatioSums

#: 2: per arm the unit-level sums (``unit_sums``) and the analysis unit (docs/statistics.md).
SCHEMA_VERSION = 2

GUARDRAILS = ("quality", "error_rate", "latency_p95")
#: Success criteria of the user's migration guide.
CHECKLIST_COST_SAVINGS = 0.70
CHECKLIST_CONFIDENCE = 0.75
CHECKLIST_ESCALATION = 0.25
CHECKLIST_LATENCY_IMPACT = 0.10
#: The most recent shadow pairs the paired tests use (bounds the cost of the pair join
#: however many pairs there are; thousands of pairs already give tight intervals).
PAIRED_MAX_PAIRS = 5_000

_SUCCESS = RoutedCall.Status.SUCCESS
_ERROR = RoutedCall.Status.ERROR


# --- Loading: everything the database aggregates -------------------------------------------

#: The call-level sums of one arm (kept under its old name for callers).
ArmTotals = CallSums


@dataclass
class ReportData:
    """What :func:`experiment_report` reads from the database."""

    arms: list[Arm]
    phase: Phase | None
    window_start: datetime | None
    window_end: datetime
    totals: dict[str, CallSums]
    daily: dict[str, dict[str, CallSums]]  # day (ISO) -> arm key -> totals
    latency_hists: dict[str, list[int]]
    assignments: dict[str, int]
    paired: dict[str, dict] = field(default_factory=dict)
    #: Per arm and metric the RatioSums over units (empty: the analysis unit is the call).
    unit_sums: dict[str, dict[str, RatioSums]] = field(default_factory=dict)
    #: Per arm and metric CUPED's MomentSums (empty unless the experiment uses CUPED).
    moments: dict[str, dict[str, MomentSums]] = field(default_factory=dict)
    #: Why the analysis unit is what it is (shown in the report).
    analysis_unit_note: str = ""
    #: More ratio metrics over units, metric -> arm key -> RatioSums (e.g. quality
    #: signals: x_u = calls with a signal, y_u = sum of the signal values); each becomes
    #: a secondary test by the delta method whatever the analysis unit.
    extra_metrics: dict[str, dict[str, RatioSums]] = field(default_factory=dict)
    #: The quality signals: per source and arm the unit-level sums (the quality
    #: guardrail's inputs), coverage and cost (``experiments.quality_report``).
    quality: QualityData = field(default_factory=QualityData)

    @property
    def analysis_unit(self) -> str:
        return UNIT if self.unit_sums else CALL


#: metric -> the RoutedCall column of the value paired calls are compared on.
PAIRED_COLUMNS = {
    "cost_per_request": "cost_usd",
    "quality": "final_score",
    "confidence": "confidence",
    "latency_ms": "latency_ms",
}


def _paired_differences(
    experiment: Experiment, control: Arm, window_start: datetime | None, window_end: datetime
) -> dict[str, dict]:
    """Shadow pairs (a call and its shadow twin in another arm, both successful): per
    treatment arm and metric the ``treatment - control`` differences of the most recent
    ``PAIRED_MAX_PAIRS`` pairs and their sums (one query that walks the ``paired_call_id``
    index backwards and stops early).

    Raw SQL over a self-join, written so the database walks the unique index of
    ``paired_call_id`` (``paired_call_id > 0``), i.e. only the pairs, not every call of
    the experiment."""
    table = RoutedCall._meta.db_table
    arm_table = Arm._meta.db_table
    ops = connection.ops
    differences = ", ".join(
        f"(CASE WHEN p.arm_id = %s THEN -1.0 ELSE 1.0 END) * "
        f"(CAST(p.{column} AS DOUBLE PRECISION) - CAST(s.{column} AS DOUBLE PRECISION)) AS d_{metric}"
        for metric, column in PAIRED_COLUMNS.items()
    )
    # SQLite: the unary + makes a column unusable for an index, so the planner takes the
    # paired_call_id index instead of the (much less selective) experiment or status ones.
    plain = "+" if connection.vendor == "sqlite" else ""
    conditions = [
        "p.paired_call_id > 0",
        f"{plain}p.experiment_id = %s",
        "p.is_shadow = %s",
        "s.is_shadow = %s",
        f"{plain}p.status = %s",
        f"{plain}s.status = %s",
        "(p.arm_id = %s OR s.arm_id = %s)",
        "p.completed_at <= %s",
    ]
    if connection.vendor == "postgresql":
        # A LATERAL subquery with OFFSET 0 is not flattened, so PostgreSQL looks each twin
        # up by primary key instead of scanning every call for a hash or merge join.
        shadow_join = (
            f"JOIN LATERAL (SELECT * FROM {table} twin "  # noqa: S608 (model table name)
            "WHERE twin.id = p.paired_call_id OFFSET 0) s ON TRUE"
        )
    else:
        shadow_join = f"JOIN {table} s ON s.id = p.paired_call_id"
    # Parameters in the order of their placeholders: the treatment-arm CASE, the CASE of
    # each difference, then the WHERE conditions.
    params: list[Any] = [control.pk] + [control.pk] * len(PAIRED_COLUMNS)
    params += [experiment.pk, False, True, _SUCCESS, _SUCCESS, control.pk, control.pk]
    params.append(ops.adapt_datetimefield_value(window_end))
    if window_start is not None:
        conditions.append("p.completed_at >= %s")
        params.append(ops.adapt_datetimefield_value(window_start))
    pairs = (
        "SELECT p.paired_call_id AS pair_order, "  # noqa: S608 (identifiers from the models, values as params)
        "CASE WHEN p.arm_id = %s THEN sa.key ELSE pa.key END AS treatment_arm, "
        f"{differences} "
        f"FROM {table} p {shadow_join} "
        f"JOIN {arm_table} pa ON pa.id = p.arm_id JOIN {arm_table} sa ON sa.id = s.arm_id "
        f"WHERE {' AND '.join(conditions)}"
    )
    columns = ", ".join(f"d_{metric}" for metric in PAIRED_COLUMNS)
    differences_by_arm: dict[str, dict[str, list[float]]] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner's row estimates for the self-join can trigger JIT compilation,
            # which costs more than the whole (bounded) join.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"SELECT treatment_arm, {columns} FROM ({pairs}) pairs "  # noqa: S608
            f"ORDER BY pair_order DESC LIMIT {PAIRED_MAX_PAIRS:d}",
            params,
        )
        for arm_key, *values in cursor.fetchall():
            by_metric = differences_by_arm.setdefault(
                arm_key, {metric: [] for metric in PAIRED_COLUMNS}
            )
            for metric, value in zip(PAIRED_COLUMNS, values, strict=True):
                if value is not None:
                    by_metric[metric].append(float(value))
    return {
        arm_key: {
            metric: {
                "n": len(values),
                "sum": math.fsum(values),
                "sum_squares": math.fsum(value * value for value in values),
                "differences": values,
            }
            for metric, values in by_metric.items()
        }
        for arm_key, by_metric in differences_by_arm.items()
    }


def report_data_load(*, experiment: Experiment, now: datetime | None = None) -> ReportData:
    """Everything the report needs, aggregated by the database (a fixed number of queries,
    however many calls there are)."""
    window_end = now or timezone.now()
    arms = list(Arm.objects.filter(experiment=experiment).order_by("position", "id"))
    phase = Phase.objects.filter(experiment=experiment).order_by("-number").first()
    started = phase.started_at if phase else experiment.started_at
    window_start = hour_start(started) if started else None
    windows = [PhaseWindow(experiment.key, window_start, window_end)]
    rollups = phase_rollups(windows)

    totals: dict[str, CallSums] = {arm.key: CallSums() for arm in arms}
    totals.update({arm_key: sums for (_, arm_key), sums in arm_call_sums(windows).items()})

    daily: dict[str, dict[str, CallSums]] = defaultdict(dict)
    day_rows = (
        rollups.annotate(day=TruncDate("bucket_start", tzinfo=UTC))
        .values("day", "arm_key", "status")
        .annotate(**ROLLUP_SUMS)
    )
    for row in day_rows:
        daily[row["day"].isoformat()].setdefault(row["arm_key"], CallSums()).add_row(row)

    latency_hists = {arm_key: hist for (_, arm_key), hist in arm_latency_hists(windows).items()}

    assignments: dict[str, int] = {}
    if phase is not None:
        by_arm_id = {arm.pk: arm.key for arm in arms}
        for (_, arm_id), count in assigned_units([phase]).items():
            assignments[by_arm_id.get(arm_id, str(arm_id))] = count

    paired: dict[str, dict] = {}
    control = _control_arm(arms)
    has_shadows = (
        control is not None
        and ArmRollup.objects.filter(experiment_key=experiment.key, is_shadow=True).exists()
    )
    if has_shadows:
        paired = _paired_differences(experiment, control, window_start, window_end)
    unit_sums, moments, note = _unit_data_load(experiment, phase)
    quality = quality_data_load(
        experiment=experiment,
        phase=phase,
        arm_keys=[arm.key for arm in arms],
        window_start=window_start,
        window_end=window_end,
    )
    return ReportData(
        arms=arms,
        phase=phase,
        window_start=window_start,
        window_end=window_end,
        totals=totals,
        daily=dict(sorted(daily.items())),
        latency_hists=latency_hists,
        assignments=assignments,
        paired=paired,
        unit_sums=unit_sums,
        moments=moments,
        analysis_unit_note=note,
        quality=quality,
    )


def _unit_data_load(experiment: Experiment, phase: Phase | None) -> tuple[dict, dict, str]:
    """The unit-level sums of the phase (one query; two with CUPED) and why the analysis
    unit is the unit or the call."""
    if experiment.unit_type == Experiment.UnitType.REQUEST:
        return {}, {}, "the experiment assigns requests, so each call is its own unit"
    if phase is None:
        return {}, {}, "the experiment has no phase yet"
    unit_sums = unit_sums_by_arm(experiment_key=experiment.key, phase_id=phase.pk)
    if not unit_sums:
        return (
            {},
            {},
            "no per-unit rollup rows for this phase (calls recorded before they existed: "
            "rebuild them with experiments.rollups.rollups_rebuild()); tests are per call",
        )
    moments = {}
    if experiment.cuped_enabled:
        moments = unit_moments_by_arm(
            experiment_key=experiment.key,
            phase_id=phase.pk,
            lookback_days=experiment.cuped_lookback_days,
        )
    return unit_sums, moments, f"the experiment assigns {experiment.unit_type}s"


# --- Pure assembly: sufficient statistics in, report out -----------------------------------


def _control_arm(arms: list[Arm]) -> Arm | None:
    if not arms:
        return None
    return next((arm for arm in arms if arm.is_control), arms[0])


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars become Python numbers, non-finite floats None, tuples
    lists; nested containers cleaned."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def _days_elapsed(data: ReportData) -> float:
    if data.window_start is None:
        days = sorted(data.daily)
        if not days:
            return 0.0
        start = datetime.fromisoformat(days[0]).replace(tzinfo=UTC)
    else:
        start = data.window_start
    return max((data.window_end - start) / timedelta(days=1), 1 / 24)


def _paired_tests(paired: dict, *, alpha: float) -> dict:
    """Paired t and Wilcoxon over the most recent pairs, per arm and metric."""
    out: dict[str, dict] = {}
    for arm_key, metrics in paired.items():
        out[arm_key] = {}
        for metric, raw in metrics.items():
            entry: dict[str, Any] = {
                "inputs": {"n": raw["n"], "sum": raw["sum"], "sum_squares": raw["sum_squares"]},
                "paired_t": None,
                "wilcoxon": None,
                "wilcoxon_differences": raw["differences"],
                "error": None,
            }
            try:
                entry["paired_t"] = stats.paired_t_test(mean_stats(raw), alpha=alpha).as_dict()
                entry["wilcoxon"] = stats.wilcoxon_signed_rank(raw["differences"]).as_dict()
            except stats.StatsInputError as error:
                entry["error"] = str(error)
            out[arm_key][metric] = entry
    return out


def _cumulative(
    data: ReportData, control_key: str, treatment_keys: list[str], settings: dict
) -> dict:
    """Per day, the cumulative primary-metric effect of each treatment with its fixed and
    sequential intervals (the sequential p-value as a running minimum)."""
    running: dict[str, CallSums] = {}
    days: list[str] = []
    series: dict[str, list[dict]] = {key: [] for key in treatment_keys}
    best_p: dict[str, float] = dict.fromkeys(treatment_keys, 1.0)
    for day, arms in data.daily.items():
        for key, totals in arms.items():
            into = running.setdefault(key, CallSums())
            for name in CallSums.__dataclass_fields__:
                setattr(into, name, getattr(into, name) + getattr(totals, name))
        days.append(day)
        control = running.get(control_key, CallSums()).sufficient_statistics()
        for key in treatment_keys:
            treatment = running.get(key, CallSums()).sufficient_statistics()
            result = compare_metric(
                metric=PRIMARY_METRIC,
                control=control[PRIMARY_METRIC],
                treatment=treatment[PRIMARY_METRIC],
                alpha=settings["alpha"],
                sequential=settings["sequential_testing"],
                tuning_n=settings["tuning_n"],
            )
            relative = result.get("relative") or {}
            point = {
                "day": day,
                "control_n": control[PRIMARY_METRIC]["n"],
                "treatment_n": treatment[PRIMARY_METRIC]["n"],
                # Cumulative sufficient statistics, so each point can be recomputed.
                "control_stats": control[PRIMARY_METRIC],
                "treatment_stats": treatment[PRIMARY_METRIC],
                "lift": relative.get("lift"),
                "fixed_ci_low": relative.get("ci_low"),
                "fixed_ci_high": relative.get("ci_high"),
                "ci_low": result.get("relative_ci_low"),
                "ci_high": result.get("relative_ci_high"),
                "p_value": result.get("p_value"),
            }
            if settings["sequential_testing"] and point["p_value"] is not None:
                best_p[key] = min(best_p[key], point["p_value"])
                point["p_value"] = best_p[key]
            series[key].append(point)
    # Per day the sums exist per call only (the unit rollup is not split by day), so the
    # cumulative series is per call whatever the report's analysis unit.
    return {"metric": PRIMARY_METRIC, "days": days, "by_arm": series, "analysis_unit": CALL}


def _checklist(candidate: dict | None, control_key: str | None) -> list[dict]:
    """The user's success criteria for the candidate arm (the winner, else the first
    treatment): each ``{key, label, threshold, value, met}`` with ``met`` True / False /
    None (no data)."""

    def item(key, label, threshold, value, met, detail=""):
        return {
            "key": key,
            "label": label,
            "threshold": threshold,
            "value": value,
            "met": met,
            "detail": detail,
        }

    if candidate is None:
        return []
    tests = candidate["tests"]
    summary = candidate["summary"]
    cost = tests.get(PRIMARY_METRIC, {})
    savings = None
    if cost.get("relative"):
        savings = -cost["relative"]["lift"]
    baseline = summary.get("savings_vs_baseline")
    confidence = summary.get("confidence")
    escalation = summary.get("escalation_rate")
    error_test = tests.get("error_rate", {})
    error_absolute = error_test.get("absolute") or {}
    error_up = None
    if error_absolute:
        error_up = error_test["p_value"] < candidate["alpha"] and error_absolute["difference"] > 0
    latency = next((g for g in candidate["guardrails"] if g["guardrail"] == "latency_p95"), None)
    latency_harm = latency["result"]["harm"] if latency and latency["result"] else None
    return [
        item(
            "cost_savings",
            "Cost savings > 70%",
            CHECKLIST_COST_SAVINGS,
            savings,
            None if savings is None else savings > CHECKLIST_COST_SAVINGS,
            f"cost per request vs the control arm {control_key!r}"
            + (f"; vs the premium baseline: {baseline:.1%}" if baseline is not None else ""),
        ),
        item(
            "avg_confidence",
            "Average confidence > 0.75",
            CHECKLIST_CONFIDENCE,
            confidence,
            None if confidence is None else confidence > CHECKLIST_CONFIDENCE,
        ),
        item(
            "escalation_rate",
            "Escalation rate < 25%",
            CHECKLIST_ESCALATION,
            escalation,
            None if escalation is None else escalation < CHECKLIST_ESCALATION,
        ),
        item(
            "no_error_increase",
            "No increase in error rate",
            0.0,
            error_absolute.get("difference"),
            None if error_up is None else not error_up,
            "met unless the error rate is significantly higher than the control's",
        ),
        item(
            "latency_impact",
            "Latency impact < 10%",
            CHECKLIST_LATENCY_IMPACT,
            latency_harm,
            None if latency_harm is None else latency_harm < CHECKLIST_LATENCY_IMPACT,
            "relative change of p95 latency vs the control",
        ),
    ]


def _arm_summary(
    raw: dict, totals: CallSums, latency: stats.quantiles.QuantileEstimate | None, alpha: float
) -> dict:
    def mean(metric):
        return share(raw[metric]["sum"], raw[metric]["n"])

    def interval(metric):
        item = raw[metric]
        if not item["n"]:
            return None
        result = stats.rate_interval(rate_stats(item), alpha=alpha)
        return [result.ci_low, result.ci_high]

    return {
        "calls": totals.n,
        "errors": totals.errors,
        "cost_per_request": mean("cost_per_request"),
        "cost_usd": totals.cost_usd_sum,
        "baseline_cost_usd": totals.baseline_cost_usd_sum,
        "savings_vs_baseline": totals.savings_vs_baseline,
        "quality": mean("quality"),
        "confidence": mean("confidence"),
        "latency_ms": mean("latency_ms"),
        "latency_p95_ms": latency.estimate if latency else None,
        "latency_p95_ci": [latency.ci_low, latency.ci_high] if latency else None,
        "escalation_rate": totals.escalation_rate,
        "escalation_rate_ci": interval("escalation_rate"),
        "error_rate": totals.error_rate,
        "error_rate_ci": interval("error_rate"),
    }


def experiment_settings(experiment: Experiment) -> dict:
    """The experiment fields the statistics depend on."""
    return {
        "key": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "unit_type": experiment.unit_type,
        "alpha": float(experiment.alpha),
        "sequential_testing": bool(experiment.sequential_testing),
        "tuning_n": float(stats_sequential.DEFAULT_TUNING_N),
        "minimum_sample_per_arm": int(experiment.minimum_sample_per_arm),
        "guardrail_quality_drop_pct": float(experiment.guardrail_quality_drop_pct),
        "guardrail_error_rate_rise_pts": float(experiment.guardrail_error_rate_rise_pts),
        "guardrail_latency_p95_rise_pct": float(experiment.guardrail_latency_p95_rise_pct),
        "traffic_percentage": float(experiment.traffic_percentage),
        "srm_p_threshold": stats.srm.SRM_P_THRESHOLD,
        "primary_metric": PRIMARY_METRIC,
        "analysis_unit": CALL,
        "cuped": bool(experiment.cuped_enabled),
        "cuped_lookback_days": int(experiment.cuped_lookback_days),
        "srm_min_expected": srm.SRM_MIN_EXPECTED,
        "quality_signal": experiment.quality_signal,
        "quality": quality_platform_settings(),
    }


def _srm(data: ReportData, arms: list[dict]) -> dict:
    """SRM over assigned units (or calls when the phase has no assignments)."""
    if data.phase is not None and data.phase.arm_keys:
        weight_by_key = dict(zip(data.phase.arm_keys, data.phase.weights, strict=False))
    else:
        weight_by_key = {arm["key"]: arm["weight"] for arm in arms}
    keys = [arm["key"] for arm in arms if arm["key"] in weight_by_key]
    unit = "assignments" if sum(data.assignments.values()) > 0 else "calls"
    observed = [
        data.assignments.get(key, 0) if unit == "assignments" else data.totals[key].n
        for key in keys
    ]
    weights = [float(weight_by_key[key]) for key in keys]
    return srm.srm_check(observed, weights, unit=unit, keys=keys)


def _arm_entry(arm: Arm, data: ReportData, control_arm: Arm | None, alpha: float) -> dict:
    totals = data.totals.get(arm.key, CallSums())
    raw = totals.sufficient_statistics()
    hist = data.latency_hists.get(arm.key)
    unit_sums = data.unit_sums.get(arm.key)
    entry = {
        "key": arm.key,
        "name": arm.name or arm.key,
        "strategy": arm.strategy,
        "is_control": control_arm is not None and arm.pk == control_arm.pk,
        "weight": arm.weight,
        "router_params": arm.router_params(),
        "assigned_units": data.assignments.get(arm.key, 0),
        "sufficient_statistics": raw,
        "latency_hist": hist or [0] * LATENCY_HIST_SIZE,
        "summary": _arm_summary(raw, totals, latency_quantile(hist, alpha=alpha), alpha),
        "analysis_unit": data.analysis_unit,
        "unit_sums": None,
        "unit_summary": None,
        "sample": totals.n,
    }
    if data.analysis_unit == UNIT:
        sums = unit_sums or empty_unit_sums()
        entry["unit_sums"] = {metric: value.as_dict() for metric, value in sums.items()}
        entry["unit_summary"] = unit_summary(sums)
        entry["sample"] = sums[PRIMARY_METRIC].n
        moments = data.moments.get(arm.key)
        if moments:
            entry["cuped_moments"] = {metric: value.as_dict() for metric, value in moments.items()}
    return entry


def _test_entry(metric: str, arm: Arm, control_key: str, result: dict, inputs: dict) -> dict:
    family, direction, _label = metric_spec(metric)
    return {
        "id": f"{metric}:{arm.key}",
        "metric": metric,
        "family": family,
        "direction": "higher" if direction > 0 else "lower",
        "primary": metric == PRIMARY_METRIC,
        "control": control_key,
        "treatment": arm.key,
        "inputs": inputs,
        **result,
    }


def _arm_tests(
    arm: Arm, control_key: str, report: dict, data: ReportData, settings: dict
) -> list[dict]:
    """The tests of one treatment: per call (Welch, two proportions) or per unit (delta
    method, CUPED when the experiment uses it)."""
    options = {
        "alpha": settings["alpha"],
        "sequential": settings["sequential_testing"],
        "tuning_n": settings["tuning_n"],
    }
    arms = {entry["key"]: entry for entry in report["arms"]}
    tests = []
    if data.analysis_unit == CALL:
        control, treatment = arms[control_key], arms[arm.key]
        for metric in METRICS:
            inputs = {
                "control": control["sufficient_statistics"][metric],
                "treatment": treatment["sufficient_statistics"][metric],
                **options,
                "analysis_unit": CALL,
            }
            result = compare_metric(
                metric=metric, **{k: inputs[k] for k in ("control", "treatment")}, **options
            )
            tests.append(_test_entry(metric, arm, control_key, result, inputs))
        return tests + _extra_tests(arm, control_key, data, options)
    control_sums = data.unit_sums.get(control_key) or empty_unit_sums()
    treatment_sums = data.unit_sums.get(arm.key) or empty_unit_sums()
    control_moments, treatment_moments = data.moments.get(control_key), data.moments.get(arm.key)
    for metric in (*METRICS, *UNIT_MEANS):
        inputs = {
            "control": control_sums[metric].as_dict(),
            "treatment": treatment_sums[metric].as_dict(),
            **options,
            "analysis_unit": UNIT,
        }
        if control_moments and treatment_moments and metric in control_moments:
            result = compare_cuped_metric(
                metric=metric,
                control=control_moments[metric],
                treatment=treatment_moments[metric],
                **options,
            )
            inputs["control_moments"] = control_moments[metric].as_dict()
            inputs["treatment_moments"] = treatment_moments[metric].as_dict()
        else:
            result = compare_ratio_metric(
                metric=metric,
                control=control_sums[metric],
                treatment=treatment_sums[metric],
                **options,
            )
        tests.append(_test_entry(metric, arm, control_key, result, inputs))
    return tests + _extra_tests(arm, control_key, data, options)


def _extra_tests(arm: Arm, control_key: str, data: ReportData, options: dict) -> list[dict]:
    """The tests of metrics given as per-arm RatioSums (``ReportData.extra_metrics``)."""
    tests = []
    for metric, by_arm in data.extra_metrics.items():
        control, treatment = by_arm.get(control_key, RatioSums()), by_arm.get(arm.key, RatioSums())
        inputs = {
            "control": control.as_dict(),
            "treatment": treatment.as_dict(),
            **options,
            "analysis_unit": UNIT,
        }
        result = compare_ratio_metric(
            metric=metric, control=control, treatment=treatment, **options
        )
        tests.append(_test_entry(metric, arm, control_key, result, inputs))
    return tests


def _arm_guardrails(arm: Arm, control_key: str, data: ReportData, report: dict, settings: dict):
    arms = {entry["key"]: entry for entry in report["arms"]}
    unit_level = data.analysis_unit == UNIT
    if unit_level:
        control = data.unit_sums.get(control_key) or empty_unit_sums()
        treatment = data.unit_sums.get(arm.key) or empty_unit_sums()
    else:
        control = arms[control_key]["sufficient_statistics"]
        treatment = arms[arm.key]["sufficient_statistics"]
    signal = settings["quality_signal"]
    checks = guardrail_checks(
        control=control,
        treatment=treatment,
        control_quality=data.quality.sums(signal, control_key),
        treatment_quality=data.quality.sums(signal, arm.key),
        control_hist=data.latency_hists.get(control_key),
        treatment_hist=data.latency_hists.get(arm.key),
        settings=settings,
        unit_level=unit_level,
    )
    return [{"arm": arm.key, "control": control_key, **check} for check in checks]


def _arm_time_to_decision(arm: Arm, control_key: str, data: ReportData, report: dict, settings):
    days_elapsed = _days_elapsed(data)
    if data.analysis_unit == UNIT:
        return comparisons.unit_time_to_decision(
            control=(data.unit_sums.get(control_key) or empty_unit_sums())[PRIMARY_METRIC],
            treatment=(data.unit_sums.get(arm.key) or empty_unit_sums())[PRIMARY_METRIC],
            settings=settings,
            days_elapsed=days_elapsed,
        )
    arms = {entry["key"]: entry for entry in report["arms"]}
    return time_to_decision(
        control=arms[control_key]["sufficient_statistics"],
        treatment=arms[arm.key]["sufficient_statistics"],
        settings=settings,
        days_elapsed=days_elapsed,
    )


def report_build(*, experiment: Experiment, data: ReportData) -> dict:
    """The report from loaded data (no queries): the analysis layer
    (``experiments.analysis``) does every test; this assembles and labels."""
    settings = experiment_settings(experiment)
    settings["analysis_unit"] = data.analysis_unit
    settings["analysis_unit_note"] = data.analysis_unit_note
    alpha = settings["alpha"]
    control_arm = _control_arm(data.arms)
    phase = data.phase
    arms = [_arm_entry(arm, data, control_arm, alpha) for arm in data.arms]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": timezone.now().isoformat(),
        "analysis_unit": data.analysis_unit,
        "settings": settings,
        "phase": {
            "number": phase.number,
            "started_at": phase.started_at.isoformat(),
            "arm_keys": phase.arm_keys,
            "weights": phase.weights,
        }
        if phase
        else None,
        "window": {
            "start": data.window_start.isoformat() if data.window_start else None,
            "end": data.window_end.isoformat(),
        },
        "histogram_edges": {
            "latency_ms": list(LATENCY_HIST_EDGES_MS),
            "latency_top_ms": LATENCY_HIST_TOP_MS,
        },
        "arms": arms,
        "control": control_arm.key if control_arm else None,
        "srm": _srm(data, arms),
        "tests": [],
        "guardrails": [],
        "paired": {},
        "time_to_decision": {},
        "cumulative": {"metric": PRIMARY_METRIC, "days": [], "by_arm": {}, "analysis_unit": CALL},
        "checklist": [],
    }
    if control_arm is None or len(data.arms) < 2:
        report["decision"] = {
            "status": NO_WINNER_YET,
            "arm": None,
            "rollback_recommended": False,
            "reasons": ["The experiment needs a control arm and at least one other arm."],
            "missing": ["arms"],
        }
        return _clean(report)

    treatments = [arm for arm in data.arms if arm.pk != control_arm.pk]
    for arm in treatments:
        report["tests"] += _arm_tests(arm, control_arm.key, report, data, settings)
        report["guardrails"] += _arm_guardrails(arm, control_arm.key, data, report, settings)
        report["time_to_decision"][arm.key] = _arm_time_to_decision(
            arm, control_arm.key, data, report, settings
        )
    adjust_families(report["tests"], alpha=alpha)
    report["quality"] = quality_section(
        data=data.quality,
        settings=settings,
        arm_keys=[arm.key for arm in data.arms],
        control=control_arm.key,
    )
    report["paired"] = _paired_tests(data.paired, alpha=alpha)
    report["cumulative"] = _cumulative(
        data, control_arm.key, [arm.key for arm in treatments], settings
    )
    report["decision"] = decide(report)
    candidate_key = report["decision"]["arm"]
    if candidate_key is None or candidate_key == control_arm.key:
        smart = [arm for arm in treatments if arm.strategy == "smart_routing"]
        candidate_key = (smart or treatments)[0].key
    report["checklist_arm"] = candidate_key
    report["checklist"] = _checklist(_candidate(report, candidate_key), control_arm.key)
    return _clean(report)


def _candidate(report: dict, arm_key: str) -> dict:
    arm = next(arm for arm in report["arms"] if arm["key"] == arm_key)
    return {
        "key": arm_key,
        "alpha": report["settings"]["alpha"],
        "summary": arm["summary"],
        "tests": {test["metric"]: test for test in report["tests"] if test["treatment"] == arm_key},
        "guardrails": [g for g in report["guardrails"] if g["arm"] == arm_key],
    }


def experiment_report(
    *,
    experiment: Experiment,
    now: datetime | None = None,
    extra_metrics: dict[str, dict[str, RatioSums]] | None = None,
) -> dict:
    """The winner report of an experiment's current phase up to ``now`` (default: now).

    ``extra_metrics`` (metric -> arm key -> RatioSums over the phase's units) adds
    secondary ratio-metric tests, e.g. quality signals. JSON-serialisable; see the module
    docstring for the metrics and the decision rule."""
    data = report_data_load(experiment=experiment, now=now)
    if extra_metrics:
        data.extra_metrics = dict(extra_metrics)
    return report_build(experiment=experiment, data=data)


def report_export_json(*, experiment: Experiment, now: datetime | None = None) -> str:
    """The report as versioned JSON (``schema_version``), holding the settings, per-arm
    sufficient statistics and histograms, every test's inputs and outputs, and the
    decision, so each number can be recomputed from the file alone."""
    return json.dumps(experiment_report(experiment=experiment, now=now), indent=2, sort_keys=True)
