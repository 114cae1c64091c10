"""The record of every routed call: one row per call, whatever its arm or outcome."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from experiments.models.experiment import Arm, Experiment, Phase


class RoutedCall(models.Model):
    class Kind(models.TextChoices):
        EXECUTE = "execute", "Single execution"
        EVALUATE = "evaluate", "Script evaluation (council)"
        CHAT = "chat", "OpenAI-compatible chat completion"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        ERROR = "error", "Error"

    idempotency_key = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EXECUTE)
    source = models.CharField(
        max_length=32, blank=True, help_text="sdk, api, openai, simulate, shadow"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)

    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    arm = models.ForeignKey(
        Arm, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    phase = models.ForeignKey(
        Phase, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    unit_id = models.CharField(max_length=255, blank=True)
    strategy = models.CharField(max_length=32, blank=True)
    is_shadow = models.BooleanField(default=False)
    paired_call = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="paired_with"
    )

    # What was asked (kept so a queued job can run from the row alone).
    task_type = models.CharField(max_length=32, blank=True)
    request_payload = models.JSONField(default=dict, blank=True)

    # How it was routed.
    complexity = models.CharField(max_length=16, blank=True)
    complexity_score = models.FloatField(null=True, blank=True)
    tier = models.CharField(max_length=16, blank=True)
    models_tried = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    escalated = models.BooleanField(default=False)
    escalation_reason = models.CharField(max_length=255, blank=True)
    confidence = models.FloatField(null=True, blank=True)

    # What it cost and how long it took.
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal("0"))
    baseline_cost_usd = models.DecimalField(max_digits=16, decimal_places=10, default=Decimal("0"))
    latency_ms = models.FloatField(null=True, blank=True)

    # What came back.
    final_score = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=64, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_type = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    job_id = models.CharField(max_length=64, blank=True, help_text="The RQ job that runs it.")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["experiment", "arm", "created_at"], name="call_exp_arm_time"),
            models.Index(fields=["status", "created_at"], name="call_status_time"),
            models.Index(fields=["complexity"], name="call_complexity"),
            models.Index(fields=["model"], name="call_model"),
            models.Index(fields=["experiment", "unit_id"], name="call_exp_unit"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | (models.Q(confidence__gte=0) & models.Q(confidence__lte=1)),
                name="call_confidence_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"call {self.pk} {self.kind} {self.status} {self.model or '-'}"

    @property
    def is_finished(self) -> bool:
        """Whether the call has reached success or error (and was rolled up)."""
        return self.status in (self.Status.SUCCESS, self.Status.ERROR)
