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
- shadow pairs: the differences of the most recent 5,000 paired calls, by a SQL self-join.

Metrics (analysis unit: the call):

============== ==================================================== ========= ========
metric         definition                                           family    better
============== ==================================================== ========= ========
cost/request   cost_usd over every finished call                    mean      lower
quality        final_score of calls that have one                   mean      higher
confidence     router confidence of calls that have one             mean      higher
latency_ms     latency of successful calls                          mean      lower
escalation     escalated successful calls / successful calls        rate      lower
error_rate     errored calls / finished calls                       rate      lower
============== ==================================================== ========= ========

Decision rule, in order:

1. ``invalid``: sample-ratio mismatch (chi-square p < 0.001 against the phase weights)
   blocks any conclusion;
2. ``guardrail failed``: a treatment is shown worse than a guardrail margin (quality drop
   > 2%, error rate rise > 1 point, latency p95 rise > 10%, from the experiment's
   fields); rollback to the control is recommended;
3. ``winner``: a treatment whose primary metric (cost per request) is significantly
   better after Holm-Bonferroni across the treatments, with every guardrail shown
   non-inferior and every arm at its minimum sample (or the control, when every
   treatment is significantly worse);
4. ``no winner yet``: otherwise, saying what is missing (sample, significance,
   guardrail evidence) and an estimate of the days to a decision.

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
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from experiments import stats
from experiments.models import Arm, ArmRollup, Assignment, Experiment, Phase, RoutedCall
from experiments.quality_report import quality_report_apply
from experiments.rollups import hour_start
from experiments.stats import sequential as stats_sequential
from experiments.stats.histograms import (
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
    LATENCY_HIST_TOP_MS,
)

SCHEMA_VERSION = 1

WINNER = "winner"
NO_WINNER_YET = "no winner yet"
GUARDRAIL_FAILED = "guardrail failed"
INVALID = "invalid"

PRIMARY_METRIC = "cost_per_request"
#: metric -> (family, direction: +1 higher is better, -1 lower is better, label)
METRICS: dict[str, tuple[str, int, str]] = {
    "cost_per_request": ("mean", -1, "Cost per request (USD)"),
    "quality": ("mean", +1, "Score level (final_score; not quality)"),
    "confidence": ("mean", +1, "Confidence"),
    "latency_ms": ("mean", -1, "Latency (ms)"),
    "escalation_rate": ("proportion", -1, "Escalation rate"),
    "error_rate": ("proportion", -1, "Error rate"),
}
GUARDRAILS = ("quality", "error_rate", "latency_p95")
LATENCY_QUANTILE = 0.95
#: Success criteria of the user's migration guide.
CHECKLIST_COST_SAVINGS = 0.70
CHECKLIST_CONFIDENCE = 0.75
CHECKLIST_ESCALATION = 0.25
CHECKLIST_LATENCY_IMPACT = 0.10
#: The most recent shadow pairs the paired tests use (bounds the cost of the pair join
#: however many pairs there are; thousands of pairs already give tight intervals).
PAIRED_MAX_PAIRS = 5_000
DECISION_POWER = 0.8

_SUCCESS = RoutedCall.Status.SUCCESS
_ERROR = RoutedCall.Status.ERROR


# --- Loading: everything the database aggregates -------------------------------------------


@dataclass
class ArmTotals:
    """The summed rollup columns of one arm (or one arm-day)."""

    n: int = 0
    errors: int = 0
    success_n: int = 0
    escalated_success: int = 0
    cost_usd_sum: float = 0.0
    cost_usd_sumsq: float = 0.0
    baseline_cost_usd_sum: float = 0.0
    quality_n: int = 0
    quality_sum: float = 0.0
    quality_sumsq: float = 0.0
    confidence_n: int = 0
    confidence_sum: float = 0.0
    confidence_sumsq: float = 0.0
    latency_n: int = 0
    latency_ms_sum: float = 0.0
    latency_ms_sumsq: float = 0.0

    def add_row(self, row: dict) -> None:
        count = int(row["n"] or 0)
        self.n += count
        if row["status"] == _ERROR:
            self.errors += count
        else:
            self.success_n += count
            self.escalated_success += int(row["escalated_n"] or 0)
            self.latency_n += int(row["latency_n"] or 0)
            self.latency_ms_sum += float(row["latency_ms_sum"] or 0.0)
            self.latency_ms_sumsq += float(row["latency_ms_sumsq"] or 0.0)
        self.cost_usd_sum += float(row["cost_usd_sum"] or 0)
        self.cost_usd_sumsq += float(row["cost_usd_sumsq"] or 0.0)
        self.baseline_cost_usd_sum += float(row["baseline_cost_usd_sum"] or 0)
        self.quality_n += int(row["quality_n"] or 0)
        self.quality_sum += float(row["quality_sum"] or 0.0)
        self.quality_sumsq += float(row["quality_sumsq"] or 0.0)
        self.confidence_n += int(row["confidence_n"] or 0)
        self.confidence_sum += float(row["confidence_sum"] or 0.0)
        self.confidence_sumsq += float(row["confidence_sumsq"] or 0.0)

    def sufficient_statistics(self) -> dict[str, dict]:
        """Per metric: ``{n, sum, sum_squares}`` (means) or ``{n, successes}`` (rates)."""
        return {
            "cost_per_request": {
                "n": self.n,
                "sum": self.cost_usd_sum,
                "sum_squares": self.cost_usd_sumsq,
            },
            "quality": {
                "n": self.quality_n,
                "sum": self.quality_sum,
                "sum_squares": self.quality_sumsq,
            },
            "confidence": {
                "n": self.confidence_n,
                "sum": self.confidence_sum,
                "sum_squares": self.confidence_sumsq,
            },
            "latency_ms": {
                "n": self.latency_n,
                "sum": self.latency_ms_sum,
                "sum_squares": self.latency_ms_sumsq,
            },
            "escalation_rate": {"n": self.success_n, "successes": self.escalated_success},
            "error_rate": {"n": self.n, "successes": self.errors},
        }


@dataclass
class ReportData:
    """What :func:`experiment_report` reads from the database."""

    arms: list[Arm]
    phase: Phase | None
    window_start: datetime | None
    window_end: datetime
    totals: dict[str, ArmTotals]
    daily: dict[str, dict[str, ArmTotals]]  # day (ISO) -> arm key -> totals
    latency_hists: dict[str, list[int]]
    assignments: dict[str, int]
    paired: dict[str, dict] = field(default_factory=dict)


_ROLLUP_SUMS = {
    "n": Sum("n"),
    "escalated_n": Sum("escalated_n"),
    "cost_usd_sum": Sum("cost_usd_sum"),
    "cost_usd_sumsq": Sum("cost_usd_sumsq"),
    "baseline_cost_usd_sum": Sum("baseline_cost_usd_sum"),
    "quality_n": Sum("quality_n"),
    "quality_sum": Sum("quality_sum"),
    "quality_sumsq": Sum("quality_sumsq"),
    "confidence_n": Sum("confidence_n"),
    "confidence_sum": Sum("confidence_sum"),
    "confidence_sumsq": Sum("confidence_sumsq"),
    "latency_n": Sum("latency_n"),
    "latency_ms_sum": Sum("latency_ms_sum"),
    "latency_ms_sumsq": Sum("latency_ms_sumsq"),
}


def _experiment_rollups(
    experiment: Experiment, window_start: datetime | None, window_end: datetime
) -> QuerySet[ArmRollup]:
    rows = ArmRollup.objects.filter(
        experiment_key=experiment.key, is_shadow=False, bucket_start__lte=window_end
    ).exclude(arm_key="")
    if window_start is not None:
        rows = rows.filter(bucket_start__gte=window_start)
    return rows.order_by()


def _summed_latency_hists(rollups: QuerySet[ArmRollup]) -> dict[str, list[int]]:
    """Per arm, the latency histograms of successful calls summed bucket-wise. One query
    returns the (few, per arm and hour) ArmRollup histograms; numpy adds them."""
    import numpy as np

    sums: dict[str, np.ndarray] = {}
    rows = rollups.filter(status=_SUCCESS, latency_n__gt=0).values_list("arm_key", "latency_hist")
    for arm_key, hist in rows:
        if not hist:
            continue
        counts = np.asarray(hist[:LATENCY_HIST_SIZE], dtype=np.int64)
        into = sums.setdefault(arm_key, np.zeros(LATENCY_HIST_SIZE, dtype=np.int64))
        into[: counts.size] += counts
    return {arm_key: counts.tolist() for arm_key, counts in sums.items()}


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
    rollups = _experiment_rollups(experiment, window_start, window_end)

    totals: dict[str, ArmTotals] = {arm.key: ArmTotals() for arm in arms}
    for row in rollups.values("arm_key", "status").annotate(**_ROLLUP_SUMS):
        totals.setdefault(row["arm_key"], ArmTotals()).add_row(row)

    daily: dict[str, dict[str, ArmTotals]] = defaultdict(dict)
    day_rows = (
        rollups.annotate(day=TruncDate("bucket_start", tzinfo=UTC))
        .values("day", "arm_key", "status")
        .annotate(**_ROLLUP_SUMS)
    )
    for row in day_rows:
        daily[row["day"].isoformat()].setdefault(row["arm_key"], ArmTotals()).add_row(row)

    latency_hists = _summed_latency_hists(rollups)

    assignments: dict[str, int] = {}
    if phase is not None:
        by_arm_id = {arm.pk: arm.key for arm in arms}
        for arm_id, count in (
            Assignment.objects.filter(experiment=experiment, phase=phase)
            .values("arm_id")
            .annotate(units=Count("id"))
            .values_list("arm_id", "units")
            .order_by()
        ):
            assignments[by_arm_id.get(arm_id, str(arm_id))] = count

    paired: dict[str, dict] = {}
    control = _control_arm(arms)
    has_shadows = (
        control is not None
        and ArmRollup.objects.filter(experiment_key=experiment.key, is_shadow=True).exists()
    )
    if has_shadows:
        paired = _paired_differences(experiment, control, window_start, window_end)
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
    )


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


def _mean_stats(raw: dict) -> stats.MeanStats:
    return stats.MeanStats(n=raw["n"], sum=raw["sum"], sum_squares=raw["sum_squares"])


def _rate_stats(raw: dict) -> stats.ProportionStats:
    return stats.ProportionStats(n=raw["n"], successes=raw["successes"])


def compare_metric(
    *,
    metric: str,
    control: dict,
    treatment: dict,
    alpha: float,
    sequential: bool,
    tuning_n: float = stats_sequential.DEFAULT_TUNING_N,
) -> dict:
    """One metric, treatment vs control, from sufficient statistics. Returns
    ``{"absolute", "relative", "sequential", "p_value", "ci_low", "ci_high",
    "relative_ci_low", "relative_ci_high", "error"}``: ``p_value`` and the intervals
    are the ones the decision uses (always-valid when ``sequential``)."""
    family = METRICS[metric][0]
    out: dict[str, Any] = {"absolute": None, "relative": None, "sequential": None, "error": None}
    try:
        if family == "mean":
            control_stats, treatment_stats = _mean_stats(control), _mean_stats(treatment)
            absolute = stats.welch_t_test(control_stats, treatment_stats, alpha=alpha)
            out["absolute"] = absolute.as_dict()
            difference, variance = absolute.difference, absolute.standard_error**2
            try:
                relative = stats.relative_difference(control_stats, treatment_stats, alpha=alpha)
                out["relative"] = relative.as_dict()
            except stats.StatsInputError as error:
                out["relative_error"] = str(error)
        else:
            control_stats, treatment_stats = _rate_stats(control), _rate_stats(treatment)
            absolute = stats.two_proportion_test(control_stats, treatment_stats, alpha=alpha)
            out["absolute"] = absolute.as_dict()
            difference, variance = absolute.difference, absolute.standard_error**2
            if absolute.relative_lift is not None:
                out["relative"] = {
                    "lift": absolute.relative_lift,
                    "ci_low": absolute.relative_ci_low,
                    "ci_high": absolute.relative_ci_high,
                }
    except stats.StatsInputError as error:
        out["error"] = str(error)
        out.update(
            p_value=None, ci_low=None, ci_high=None, relative_ci_low=None, relative_ci_high=None
        )
        return out
    out["p_value"] = out["absolute"]["p_value"]
    out["ci_low"], out["ci_high"] = out["absolute"]["ci_low"], out["absolute"]["ci_high"]
    relative = out["relative"]
    out["relative_ci_low"] = relative["ci_low"] if relative else None
    out["relative_ci_high"] = relative["ci_high"] if relative else None
    if sequential:
        n_total = int(control["n"] + treatment["n"])
        absolute_cs = stats.confidence_sequence(
            estimate=difference, variance=variance, n_total=n_total, alpha=alpha, tuning_n=tuning_n
        )
        out["sequential"] = {"absolute": absolute_cs.as_dict(), "relative": None}
        out["p_value"] = absolute_cs.p_value
        out["ci_low"], out["ci_high"] = absolute_cs.ci_low, absolute_cs.ci_high
        if relative and relative.get("standard_error") is not None:
            relative_cs = stats.confidence_sequence(
                estimate=relative["lift"],
                variance=relative["standard_error"] ** 2,
                n_total=n_total,
                alpha=alpha,
                tuning_n=tuning_n,
            )
            out["sequential"]["relative"] = relative_cs.as_dict()
            out["relative_ci_low"], out["relative_ci_high"] = (
                relative_cs.ci_low,
                relative_cs.ci_high,
            )
        elif relative:
            # Rates: the relative lift's delta-method se, recomputed for the sequence.
            _lift, se = stats.proportions.relative_rate_arrays(
                control["successes"], control["n"], treatment["successes"], treatment["n"]
            )
            relative_cs = stats.confidence_sequence(
                estimate=relative["lift"],
                variance=float(se) ** 2,
                n_total=n_total,
                alpha=alpha,
                tuning_n=tuning_n,
            )
            out["sequential"]["relative"] = relative_cs.as_dict()
            out["relative_ci_low"], out["relative_ci_high"] = (
                relative_cs.ci_low,
                relative_cs.ci_high,
            )
    return out


def latency_quantile(
    hist: list[int] | None, *, alpha: float
) -> stats.quantiles.QuantileEstimate | None:
    """p95 latency and its interval from a summed histogram (None when empty)."""
    if not hist or sum(hist) == 0:
        return None
    return stats.histogram_quantile_ci(
        hist, LATENCY_HIST_EDGES_MS, LATENCY_QUANTILE, top=LATENCY_HIST_TOP_MS, alpha=alpha
    )


def guardrail_checks(
    *,
    control: dict,
    treatment: dict,
    control_hist: list[int] | None,
    treatment_hist: list[int] | None,
    settings: dict,
) -> list[dict]:
    """The three guardrails of one treatment, each ``{guardrail, margin, inputs, result,
    status, error}``; status ``pass`` / ``fail`` / ``inconclusive``."""
    alpha, sequential, tuning_n = (
        settings["alpha"],
        settings["sequential_testing"],
        settings["tuning_n"],
    )
    checks = []

    def run(name: str, margin: float, inputs: dict, function) -> None:
        entry = {
            "guardrail": name,
            "margin": margin,
            "inputs": inputs,
            "result": None,
            "error": None,
        }
        try:
            result = function()
            entry["result"] = result.as_dict()
            entry["status"] = result.status
        except stats.StatsInputError as error:
            entry["status"] = "inconclusive"
            entry["error"] = str(error)
        checks.append(entry)

    quality_margin = settings["guardrail_quality_drop_pct"] / 100.0
    run(
        "quality",
        quality_margin,
        {"control": control["quality"], "treatment": treatment["quality"]},
        lambda: stats.relative_mean_noninferiority(
            _mean_stats(control["quality"]),
            _mean_stats(treatment["quality"]),
            margin=quality_margin,
            alpha=alpha,
            higher_is_better=True,
            sequential=sequential,
            tuning_n=tuning_n,
        ),
    )
    error_margin = settings["guardrail_error_rate_rise_pts"] / 100.0
    run(
        "error_rate",
        error_margin,
        {"control": control["error_rate"], "treatment": treatment["error_rate"]},
        lambda: stats.rate_rise_noninferiority(
            _rate_stats(control["error_rate"]),
            _rate_stats(treatment["error_rate"]),
            margin=error_margin,
            alpha=alpha,
            sequential=sequential,
            tuning_n=tuning_n,
        ),
    )
    latency_margin = settings["guardrail_latency_p95_rise_pct"] / 100.0
    control_q = latency_quantile(control_hist, alpha=alpha)
    treatment_q = latency_quantile(treatment_hist, alpha=alpha)

    def latency_test():
        if control_q is None or treatment_q is None:
            raise stats.StatsInputError("no successful calls with a latency in one of the arms yet")
        return stats.quantile_ratio_noninferiority(
            control_q,
            treatment_q,
            margin=latency_margin,
            alpha=alpha,
            sequential=sequential,
            tuning_n=tuning_n,
        )

    run(
        "latency_p95",
        latency_margin,
        {
            "control_latency_hist": control_hist,
            "treatment_latency_hist": treatment_hist,
            "quantile": LATENCY_QUANTILE,
            "control_quantile": control_q.as_dict() if control_q else None,
            "treatment_quantile": treatment_q.as_dict() if treatment_q else None,
        },
        latency_test,
    )
    return checks


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
    entry = {"unit": unit, "arm_keys": keys, "result": None, "error": None}
    try:
        entry["result"] = stats.srm_test(observed, weights).as_dict()
    except stats.StatsInputError as error:
        entry["error"] = str(error)
    return entry


def _days_elapsed(data: ReportData) -> float:
    if data.window_start is None:
        days = sorted(data.daily)
        if not days:
            return 0.0
        start = datetime.fromisoformat(days[0]).replace(tzinfo=UTC)
    else:
        start = data.window_start
    return max((data.window_end - start) / timedelta(days=1), 1 / 24)


def _time_to_decision(
    *,
    control: dict,
    treatment: dict,
    settings: dict,
    days_elapsed: float,
    metric: str = PRIMARY_METRIC,
) -> dict:
    """Units per arm to detect the effect observed so far on the primary metric (80%
    power), and the days until both arms hold them at the current rate."""
    entry: dict[str, Any] = {"metric": metric, "power": DECISION_POWER, "error": None}
    try:
        control_stats, treatment_stats = (
            _mean_stats(control[metric]),
            _mean_stats(treatment[metric]),
        )
        effect = treatment_stats.mean - control_stats.mean
        if effect == 0:
            raise stats.StatsInputError("no difference observed yet; the sample size is unbounded")
        size = stats.sample_size_per_arm(
            variance_control=control_stats.variance,
            variance_treatment=treatment_stats.variance,
            effect=effect,
            alpha=settings["alpha"],
            power=DECISION_POWER,
            sequential=settings["sequential_testing"],
            tuning_n=settings["tuning_n"],
        )
        required = max(size.per_arm, settings["minimum_sample_per_arm"])
        current = [control[metric]["n"], treatment[metric]["n"]]
        rates = [count / days_elapsed for count in current] if days_elapsed > 0 else [0.0, 0.0]
        entry.update(
            sample_size=size.as_dict(),
            required_per_arm=required,
            current_per_arm=current,
            daily_units_per_arm=rates,
            days_to_decision=stats.days_to_decision(
                required_per_arm=required, current_per_arm=current, daily_units_per_arm=rates
            ),
        )
    except stats.StatsInputError as error:
        entry["error"] = str(error)
    return entry


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
                entry["paired_t"] = stats.paired_t_test(_mean_stats(raw), alpha=alpha).as_dict()
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
    running: dict[str, ArmTotals] = {}
    days: list[str] = []
    series: dict[str, list[dict]] = {key: [] for key in treatment_keys}
    best_p: dict[str, float] = dict.fromkeys(treatment_keys, 1.0)
    for day, arms in data.daily.items():
        for key, totals in arms.items():
            into = running.setdefault(key, ArmTotals())
            for name in ArmTotals.__dataclass_fields__:
                setattr(into, name, getattr(into, name) + getattr(totals, name))
        days.append(day)
        control = running.get(control_key, ArmTotals()).sufficient_statistics()
        for key in treatment_keys:
            treatment = running.get(key, ArmTotals()).sufficient_statistics()
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
    return {"metric": PRIMARY_METRIC, "days": days, "by_arm": series}


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
    raw: dict, totals: ArmTotals, latency: stats.quantiles.QuantileEstimate | None, alpha: float
) -> dict:
    def mean(metric):
        item = raw[metric]
        return item["sum"] / item["n"] if item["n"] else None

    def rate(metric):
        item = raw[metric]
        return item["successes"] / item["n"] if item["n"] else None

    def interval(metric):
        item = raw[metric]
        if not item["n"]:
            return None
        result = stats.rate_interval(_rate_stats(item), alpha=alpha)
        return [result.ci_low, result.ci_high]

    return {
        "calls": totals.n,
        "errors": totals.errors,
        "cost_per_request": mean("cost_per_request"),
        "cost_usd": totals.cost_usd_sum,
        "baseline_cost_usd": totals.baseline_cost_usd_sum,
        "savings_vs_baseline": (
            1 - totals.cost_usd_sum / totals.baseline_cost_usd_sum
            if totals.baseline_cost_usd_sum
            else None
        ),
        "quality": mean("quality"),
        "confidence": mean("confidence"),
        "latency_ms": mean("latency_ms"),
        "latency_p95_ms": latency.estimate if latency else None,
        "latency_p95_ci": [latency.ci_low, latency.ci_high] if latency else None,
        "escalation_rate": rate("escalation_rate"),
        "escalation_rate_ci": interval("escalation_rate"),
        "error_rate": rate("error_rate"),
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
        "analysis_unit": "call",
    }


def report_build(*, experiment: Experiment, data: ReportData) -> dict:
    """The report from loaded data (no queries)."""
    settings = experiment_settings(experiment)
    alpha = settings["alpha"]
    control_arm = _control_arm(data.arms)
    phase = data.phase
    arms: list[dict] = []
    raw_by_key: dict[str, dict] = {}
    for arm in data.arms:
        totals = data.totals.get(arm.key, ArmTotals())
        raw = totals.sufficient_statistics()
        raw_by_key[arm.key] = raw
        hist = data.latency_hists.get(arm.key)
        arms.append(
            {
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
            }
        )
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": timezone.now().isoformat(),
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
        "cumulative": {"metric": PRIMARY_METRIC, "days": [], "by_arm": {}},
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

    control_raw = raw_by_key[control_arm.key]
    treatments = [arm for arm in data.arms if arm.pk != control_arm.pk]
    days_elapsed = _days_elapsed(data)
    for arm in treatments:
        raw = raw_by_key[arm.key]
        for metric in METRICS:
            result = compare_metric(
                metric=metric,
                control=control_raw[metric],
                treatment=raw[metric],
                alpha=alpha,
                sequential=settings["sequential_testing"],
                tuning_n=settings["tuning_n"],
            )
            report["tests"].append(
                {
                    "id": f"{metric}:{arm.key}",
                    "metric": metric,
                    "family": METRICS[metric][0],
                    "direction": "higher" if METRICS[metric][1] > 0 else "lower",
                    "primary": metric == PRIMARY_METRIC,
                    "control": control_arm.key,
                    "treatment": arm.key,
                    "inputs": {
                        "control": control_raw[metric],
                        "treatment": raw[metric],
                        "alpha": alpha,
                        "sequential": settings["sequential_testing"],
                        "tuning_n": settings["tuning_n"],
                    },
                    **result,
                }
            )
        for check in guardrail_checks(
            control=control_raw,
            treatment=raw,
            control_hist=data.latency_hists.get(control_arm.key),
            treatment_hist=data.latency_hists.get(arm.key),
            settings=settings,
        ):
            report["guardrails"].append({"arm": arm.key, "control": control_arm.key, **check})
        report["time_to_decision"][arm.key] = _time_to_decision(
            control=control_raw, treatment=raw, settings=settings, days_elapsed=days_elapsed
        )
    # Holm-Bonferroni within the primary family and within the secondary family.
    for primary in (True, False):
        family = [
            test
            for test in report["tests"]
            if test["primary"] == primary and test["p_value"] is not None
        ]
        adjusted = stats.holm_bonferroni([test["p_value"] for test in family])
        for test, value in zip(family, adjusted, strict=True):
            test["p_value_adjusted"] = value
            test["significant"] = value < alpha
        for test in report["tests"]:
            if test["primary"] == primary and test["p_value"] is None:
                test["p_value_adjusted"] = None
                test["significant"] = False
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


def _p_text(p_value: float) -> str:
    """``= 0.012`` or ``< 0.0001`` (always-valid p-values underflow to 0 on big effects)."""
    return "< 0.0001" if p_value < 0.0001 else f"= {p_value:.2g}"


def decide(report: dict) -> dict:
    """The decision rule (module docstring) over a report's SRM, tests and guardrails.

    Pure: it reads only the report dict, so an exported report can be re-decided."""
    settings = report["settings"]
    control = report["control"]
    minimum = settings["minimum_sample_per_arm"]
    srm = report["srm"]
    decision: dict[str, Any] = {
        "status": None,
        "arm": None,
        "rollback_recommended": False,
        "reasons": [],
        "missing": [],
    }
    if srm.get("result") and srm["result"]["mismatch"]:
        decision.update(status=INVALID)
        decision["reasons"].append(
            f"Sample-ratio mismatch: the {srm['unit']} per arm {srm['result']['observed']} do not "
            f"match the weights {srm['result']['weights']} (chi-square p {_p_text(srm['result']['p_value'])} "
            f"< {srm['result']['threshold']}). Fix the assignment before trusting any result."
        )
        return decision
    failed = [g for g in report["guardrails"] if g["status"] == "fail"]
    if failed:
        decision.update(status=GUARDRAIL_FAILED, rollback_recommended=True)
        for guardrail in failed:
            result = guardrail["result"]
            decision["reasons"].append(
                f"Arm {guardrail['arm']!r} fails the {guardrail['guardrail']} guardrail: harm "
                f"{result['harm']:+.2%} (interval {result['harm_low']:+.2%} to {result['harm_high']:+.2%}) "
                f"exceeds the margin {guardrail['margin']:.2%}."
            )
        decision["reasons"].append(
            f"Rollback recommended: send all traffic to the control arm {control!r}."
        )
        decision["failed_guardrails"] = [
            {"arm": g["arm"], "guardrail": g["guardrail"]} for g in failed
        ]
        return decision

    arm_n = {arm["key"]: arm["summary"]["calls"] for arm in report["arms"]}
    short = {key: n for key, n in arm_n.items() if n < minimum}
    primary = [test for test in report["tests"] if test["primary"]]
    direction = METRICS[PRIMARY_METRIC][1]

    def better(test):
        absolute = test.get("absolute") or {}
        return test["significant"] and direction * absolute.get("difference", 0) > 0

    def worse(test):
        absolute = test.get("absolute") or {}
        return test["significant"] and direction * absolute.get("difference", 0) < 0

    guardrails_by_arm: dict[str, list[dict]] = defaultdict(list)
    for guardrail in report["guardrails"]:
        guardrails_by_arm[guardrail["arm"]].append(guardrail)
    winners = [
        test
        for test in primary
        if better(test)
        and not short
        and all(g["status"] == "pass" for g in guardrails_by_arm[test["treatment"]])
    ]
    if winners:
        best = max(
            winners, key=lambda test: direction * ((test.get("relative") or {}).get("lift") or 0)
        )
        relative = best.get("relative") or {}
        decision.update(status=WINNER, arm=best["treatment"])
        lift = relative.get("lift")
        decision["reasons"].append(
            f"Arm {best['treatment']!r} improves {PRIMARY_METRIC.replace('_', ' ')} "
            + (f"by {abs(lift):.1%} " if lift is not None else "")
            + f"vs {control!r} (adjusted p {_p_text(best['p_value_adjusted'])} < {settings['alpha']}"
            + (", always-valid" if settings["sequential_testing"] else "")
            + "), and every guardrail is shown within its margin."
        )
        return decision
    if primary and all(worse(test) for test in primary) and not short:
        decision.update(status=WINNER, arm=control)
        decision["reasons"].append(
            f"Every treatment is significantly worse on {PRIMARY_METRIC.replace('_', ' ')}; keep the control {control!r}."
        )
        return decision

    decision.update(status=NO_WINNER_YET)
    if short:
        decision["missing"].append("sample")
        decision["reasons"].append(
            "Not enough calls yet: "
            + ", ".join(f"{key} has {n} of {minimum}" for key, n in sorted(short.items()))
            + "."
        )
    for test in primary:
        if test["p_value"] is None:
            decision["missing"].append("data")
            decision["reasons"].append(f"{test['treatment']}: {test['error']}")
        elif not better(test):
            decision["missing"].append("significance")
            decision["reasons"].append(
                f"{test['treatment']}: the {PRIMARY_METRIC.replace('_', ' ')} difference is not significant yet "
                f"(adjusted p {_p_text(test['p_value_adjusted'])}, alpha {settings['alpha']})."
            )
        pending = [
            g["guardrail"] for g in guardrails_by_arm[test["treatment"]] if g["status"] != "pass"
        ]
        if pending:
            decision["missing"].append("guardrails")
            decision["reasons"].append(
                f"{test['treatment']}: guardrails not yet shown within their margins: {', '.join(pending)}."
            )
        timing = report["time_to_decision"].get(test["treatment"], {})
        if timing.get("days_to_decision") is not None:
            decision["reasons"].append(
                f"{test['treatment']}: about {timing['days_to_decision']:.1f} more days at the current traffic "
                f"to detect the observed effect with {DECISION_POWER:.0%} power "
                f"({timing['required_per_arm']} calls per arm)."
            )
    decision["missing"] = sorted(set(decision["missing"]))
    return decision


def experiment_report(*, experiment: Experiment, now: datetime | None = None) -> dict:
    """The winner report of an experiment's current phase up to ``now`` (default: now).

    JSON-serialisable; see the module docstring for the metrics and the decision rule."""
    data = report_data_load(experiment=experiment, now=now)
    report = report_build(experiment=experiment, data=data)
    # Quality is measured by quality signals, not final_score (experiments.quality_report).
    return quality_report_apply(report=report, experiment=experiment, decide=decide)


def report_export_json(*, experiment: Experiment, now: datetime | None = None) -> str:
    """The report as versioned JSON (``schema_version``), holding the settings, per-arm
    sufficient statistics and histograms, every test's inputs and outputs, and the
    decision, so each number can be recomputed from the file alone."""
    return json.dumps(experiment_report(experiment=experiment, now=now), indent=2, sort_keys=True)
