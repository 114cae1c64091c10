"""Acknowledged and snoozed alerts: who silenced which alert, why, and until when.

Append-only, so the table is also the audit trail of alert handling: a new row supersedes
the older ones for the same alert; nothing is edited or deleted in the admin.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AlertSilence(models.Model):
    class Kind(models.TextChoices):
        ACKNOWLEDGE = "acknowledge", "Acknowledged"
        SNOOZE = "snooze", "Snoozed"

    rule_key = models.SlugField(max_length=64, help_text="The AlertRule key of the alert.")
    # Empty: the alert about all traffic (rules such as SRM fire per experiment).
    experiment_key = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    until = models.DateTimeField(help_text="The alert shows as active again after this.")
    note = models.CharField(max_length=500, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["rule_key", "until"], name="alert_silence_rule_until")]

    def __str__(self) -> str:
        scope = f" ({self.experiment_key})" if self.experiment_key else ""
        return f"{self.get_kind_display()} {self.rule_key}{scope} until {self.until:%Y-%m-%d %H:%M}"
