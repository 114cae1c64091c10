"""Hourly rollups of routed calls: sums that add up, so reports and dashboards never loop
over raw calls.

One row per (completed hour in UTC) x experiment_key x arm_key x kind x status x strategy x
complexity x tier x model x provider x task_type x is_shadow. Every measure is a sum (or a
bucket-wise summable histogram), so any coarser view (per arm, per day, per model, over
all time) is a ``SUM(...) GROUP BY`` over these rows. Rows are written only by
``experiments.rollups`` (``rollup_apply`` per finished call, ``rollups_rebuild`` from raw).

:class:`ArmRollup` is the same sums at the grain the winner reports need (hour x
experiment x arm x status x shadow): a few rows per arm and hour however many models,
tiers and task types the calls spread over, so a report over millions of calls reads a
few thousand rows.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class RollupMeasures(models.Model):
    """The summed measures shared by both rollups.

    ``*_n`` counts the calls that had the measure (latency, confidence, final_score may be
    missing, e.g. on errors); ``n`` counts all calls of the row.
    """

    n = models.PositiveBigIntegerField(default=0)
    escalated_n = models.PositiveBigIntegerField(default=0)
    cost_usd_sum = models.DecimalField(max_digits=24, decimal_places=10, default=Decimal("0"))
    baseline_cost_usd_sum = models.DecimalField(
        max_digits=24, decimal_places=10, default=Decimal("0")
    )
    cost_usd_sumsq = models.FloatField(default=0.0, help_text="Sum of squared cost in USD^2.")
    input_tokens_sum = models.PositiveBigIntegerField(default=0)
    output_tokens_sum = models.PositiveBigIntegerField(default=0)
    latency_n = models.PositiveBigIntegerField(default=0)
    latency_ms_sum = models.FloatField(default=0.0)
    latency_ms_sumsq = models.FloatField(default=0.0)
    confidence_n = models.PositiveBigIntegerField(default=0)
    confidence_sum = models.FloatField(default=0.0)
    confidence_sumsq = models.FloatField(default=0.0)
    quality_n = models.PositiveBigIntegerField(default=0, help_text="Calls with a final_score.")
    quality_sum = models.FloatField(default=0.0)
    quality_sumsq = models.FloatField(default=0.0)
    # Counts per bucket; edges in experiments.stats.histograms (LATENCY_HIST_EDGES_MS,
    # CONFIDENCE_HIST_EDGES); always one count per bucket.
    latency_hist = models.JSONField(default=list, blank=True)
    confidence_hist = models.JSONField(default=list, blank=True)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


#: The dimensions of a call rollup row besides its time bucket, in the unique key's order.
CALL_DIMENSIONS = (
    "experiment_key",
    "arm_key",
    "kind",
    "status",
    "strategy",
    "complexity",
    "tier",
    "model",
    "provider",
    "task_type",
    "is_shadow",
)


class CallDimensions(RollupMeasures):
    """The key of the hourly and daily call rollups besides ``bucket_start``, and the sums.

    Empty strings (not NULL) stand for "none", so the unique constraint holds.
    """

    experiment_key = models.CharField(max_length=100, blank=True, default="")
    arm_key = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=16, blank=True, default="")
    status = models.CharField(max_length=16, blank=True, default="")
    strategy = models.CharField(max_length=32, blank=True, default="")
    complexity = models.CharField(max_length=16, blank=True, default="")
    tier = models.CharField(max_length=16, blank=True, default="")
    model = models.CharField(max_length=128, blank=True, default="")
    provider = models.CharField(max_length=64, blank=True, default="")
    task_type = models.CharField(max_length=32, blank=True, default="")
    is_shadow = models.BooleanField(default=False)

    class Meta:
        abstract = True


class CallRollup(CallDimensions):
    bucket_start = models.DateTimeField(help_text="Start of the UTC hour the calls completed in.")

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_start", *CALL_DIMENSIONS],
                name="rollup_unique_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["experiment_key", "arm_key", "bucket_start"], name="rollup_exp_arm_time"
            ),
            models.Index(fields=["bucket_start"], name="rollup_time"),
        ]

    def __str__(self) -> str:
        experiment = f"{self.experiment_key}/{self.arm_key}" if self.experiment_key else "-"
        return f"{self.bucket_start:%Y-%m-%d %H:00} {experiment} {self.model or '-'} n={self.n}"


class ArmRollup(RollupMeasures):
    """The same sums per (UTC hour, experiment, arm, status, shadow): the reports' grain."""

    bucket_start = models.DateTimeField(help_text="Start of the UTC hour the calls completed in.")
    experiment_key = models.CharField(max_length=100, blank=True, default="")
    arm_key = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=16, blank=True, default="")
    is_shadow = models.BooleanField(default=False)

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_start", "experiment_key", "arm_key", "status", "is_shadow"],
                name="arm_rollup_unique_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["experiment_key", "arm_key", "bucket_start"], name="arm_rollup_exp_arm_time"
            ),
        ]

    def __str__(self) -> str:
        experiment = f"{self.experiment_key}/{self.arm_key}" if self.experiment_key else "-"
        return f"{self.bucket_start:%Y-%m-%d %H:00} {experiment} {self.status} n={self.n}"


class UnitRollup(models.Model):
    """Per-unit sufficient statistics of an experiment: one row per (experiment, phase,
    arm, unit) holding the sums of that unit's finished, non-shadow calls.

    The statistics analyse the randomization unit (a user, a script, a team), not the
    call: per arm the analysis needs only sums over these rows (n units, sum x, sum y,
    sum x^2, sum y^2, sum xy), which one ``GROUP BY arm_key`` computes in the database
    (``experiments.selectors_analysis``). Written only by ``experiments.rollups``
    (``rollup_apply`` per finished call, ``rollups_rebuild`` from raw).
    ``first_exposure_at`` (the earliest call of the unit in the phase) bounds the
    pre-exposure period CUPED reads.
    """

    experiment_key = models.CharField(max_length=100)
    phase_id = models.PositiveBigIntegerField(
        default=0, help_text="The Phase the calls were made in (0: none)."
    )
    arm_key = models.CharField(max_length=100)
    unit_id = models.CharField(max_length=255)
    n = models.PositiveBigIntegerField(default=0, help_text="Finished calls of the unit.")
    errors = models.PositiveBigIntegerField(default=0)
    escalated_n = models.PositiveBigIntegerField(default=0)
    cost_usd_sum = models.FloatField(default=0.0)
    latency_n = models.PositiveBigIntegerField(default=0)
    latency_ms_sum = models.FloatField(default=0.0)
    confidence_n = models.PositiveBigIntegerField(default=0)
    confidence_sum = models.FloatField(default=0.0)
    quality_n = models.PositiveBigIntegerField(default=0)
    quality_sum = models.FloatField(default=0.0)
    first_exposure_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment_key", "phase_id", "arm_key", "unit_id"],
                name="unit_rollup_unique_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_key}/{self.arm_key} unit {self.unit_id} n={self.n}"
