"""Alert rules: what the dashboard warns about, with thresholds editable in the admin.

The defaults come from the user's migration guide ("low confidence < 0.6 -> use better
models; high escalation > 30% -> review classification; high costs > $0.01/request ->
enable cost optimization") plus three that an experiment needs: the error rate rising
above its baseline, a sample-ratio mismatch, and a failing guardrail. A data migration
seeds them; ``experiments.alerts`` evaluates them.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class AlertRule(models.Model):
    class Metric(models.TextChoices):
        AVG_CONFIDENCE = "avg_confidence", "Average confidence (0-1) below the threshold"
        ESCALATION_RATE = "escalation_rate", "Escalation rate (%) above the threshold"
        COST_PER_REQUEST = "cost_per_request_usd", "Cost per request (USD) above the threshold"
        ERROR_RATE_RISE = (
            "error_rate_rise",
            "Error rate rise over its baseline (percentage points) above the threshold",
        )
        SRM = "srm", "Sample-ratio mismatch: chi-square p-value below the threshold"
        GUARDRAIL = "guardrail", "An experiment guardrail failing (limits set per experiment)"

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    threshold = models.DecimalField(
        max_digits=20,
        decimal_places=10,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=(
            "Confidence as 0-1; escalation rate in percent; cost in USD per request; error-rate "
            "rise in percentage points; SRM as a p-value. Guardrails take their limits from "
            "each experiment, so leave it empty for them."
        ),
    )
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.WARNING)
    action = models.TextField(help_text="What to do when the alert fires; shown beside it.")
    min_requests = models.PositiveIntegerField(
        default=20,
        help_text="Stay quiet until the window holds at least this many requests.",
    )
    baseline_hours = models.PositiveIntegerField(
        default=168,
        validators=[MinValueValidator(1)],
        help_text=(
            "Error-rate rule only: the baseline is the error rate over this many hours "
            "before the evaluated window."
        ),
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["metric", "key"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(threshold__isnull=True) | models.Q(threshold__gte=0),
                name="alert_rule_threshold_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_level_display()})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.metric != self.Metric.GUARDRAIL and self.threshold is None:
            errors["threshold"] = "Set a threshold: only guardrail rules go without one."
        if self.threshold is not None:
            if self.metric == self.Metric.AVG_CONFIDENCE and self.threshold > 1:
                errors["threshold"] = "Confidence is between 0 and 1: use e.g. 0.6."
            elif self.metric == self.Metric.ESCALATION_RATE and self.threshold > 100:
                errors["threshold"] = "The escalation rate is a percentage: use 0-100, e.g. 30."
            elif self.metric == self.Metric.ERROR_RATE_RISE and self.threshold > 100:
                errors["threshold"] = "The rise is in percentage points: use 0-100, e.g. 1."
            elif self.metric == self.Metric.SRM and not (0 < self.threshold < 1):
                errors["threshold"] = "The SRM threshold is a p-value: use e.g. 0.001."
        if errors:
            raise ValidationError(errors)
