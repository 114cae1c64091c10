"""The audit log of experiments: who changed what, and when."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from experiments.models.experiment import Experiment


class AuditLogEntry(models.Model):
    """One state change or configuration change of an experiment (append-only)."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Configuration changed"
        START = "start", "Started"
        PAUSE = "pause", "Paused"
        RESUME = "resume", "Resumed"
        RAMP = "ramp", "Ramped"
        STOP = "stop", "Stopped"
        CONCLUDE = "conclude", "Concluded"
        ROLLBACK = "rollback", "Rolled back"
        NEW_PHASE = "new_phase", "New phase"

    experiment = models.ForeignKey(
        Experiment, null=True, on_delete=models.SET_NULL, related_name="audit_log"
    )
    # Kept as text too, so the log still says what it was about after a deletion.
    experiment_key = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="Empty: the system.")
    action = models.CharField(max_length=16, choices=Action.choices)
    message = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Before and after values.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["experiment", "created_at"], name="audit_exp_time")]

    def __str__(self) -> str:
        who = self.username or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who} {self.action} {self.experiment_key}"
