"""Daily compaction of the hourly rollups, for closed UTC days.

``CallRollupDaily`` has the key and the sums (``CallDimensions``) of :class:`CallRollup`
with the hour replaced by its day (``bucket_start`` = 00:00 UTC), so a 14-day window reads ~14 x (combinations)
rows instead of ~336 x (combinations). Rows are derived data: ``experiments.rollups_daily``
rebuilds a day from its hourly rows whenever that day's fingerprint (count and highest id
of its hourly rows, kept in ``CallRollupDay``) changes, and nothing else writes them. The
current day, and the hour after midnight, are always read from the hourly rows.

The histograms (``latency_hist``, ``confidence_hist``, from ``RollupMeasures``) stay empty
here: the dashboard sums them from ``ArmRollup``, a few rows per hour.
"""

from __future__ import annotations

from django.db import models

from experiments.models.rollups import CALL_DIMENSIONS, CallDimensions


class CallRollupDaily(CallDimensions):
    """CallRollup's key with the day instead of the hour, and the same sums."""

    bucket_start = models.DateTimeField(help_text="00:00 UTC of the day the calls completed on.")

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_start", *CALL_DIMENSIONS],
                name="rollup_daily_unique_key",
            ),
        ]
        indexes = [
            models.Index(fields=["bucket_start"], name="rollup_daily_time"),
            models.Index(
                fields=["experiment_key", "arm_key", "bucket_start"], name="rollup_daily_exp_arm"
            ),
        ]

    def __str__(self) -> str:
        experiment = f"{self.experiment_key}/{self.arm_key}" if self.experiment_key else "-"
        return f"{self.bucket_start:%Y-%m-%d} {experiment} {self.model or '-'} n={self.n}"


class CallRollupDay(models.Model):
    """A compacted day and the fingerprint of the hourly rows it was built from."""

    bucket_start = models.DateTimeField(unique=True, help_text="00:00 UTC of the day.")
    source_rows = models.PositiveIntegerField(help_text="Hourly rollup rows of the day.")
    source_max_id = models.PositiveBigIntegerField(help_text="Highest id among them.")
    compacted_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-bucket_start"]

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d}: {self.source_rows} hourly rows"
