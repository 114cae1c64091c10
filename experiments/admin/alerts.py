"""Admin: alert rules (thresholds, levels and actions of the dashboard's alerts)."""

from __future__ import annotations

from django.contrib import admin

from experiments.admin.readonly import ReadOnlyModelAdmin
from experiments.formatting import threshold
from experiments.models import AlertRule, AlertSilence


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "metric", "threshold_display", "level", "min_requests", "enabled")
    list_editable = ("level", "enabled")
    list_filter = ("level", "enabled", "metric")
    search_fields = ("key", "name", "action")
    prepopulated_fields = {"key": ("name",)}
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("key", "name", "enabled")}),
        (
            "When it fires",
            {
                "fields": ("metric", "threshold", "min_requests", "baseline_hours"),
                "description": (
                    "Rules are evaluated over the dashboard's time window (and experiment "
                    "filter). Guardrail limits are set on each experiment."
                ),
            },
        ),
        ("What it says", {"fields": ("level", "action")}),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    @admin.display(description="threshold", ordering="threshold")
    def threshold_display(self, obj: AlertRule) -> str:
        return threshold(obj.metric, obj.threshold)


@admin.register(AlertSilence)
class AlertSilenceAdmin(ReadOnlyModelAdmin):
    """Who acknowledged or snoozed which alert, and until when (append-only)."""

    list_display = ("created_at", "rule_key", "experiment_key", "kind", "until", "username")
    list_filter = ("kind", "rule_key")
    search_fields = ("rule_key", "experiment_key", "username", "note")
    date_hierarchy = "created_at"
