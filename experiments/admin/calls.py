"""Admin: the record of routed calls (read-only and append-only: calls are written by the
platform, and leave only through the retention command ``routing prune-calls``)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from experiments.admin.readonly import ReadOnlyModelAdmin
from experiments.formatting import ms, number, usd
from experiments.models import RoutedCall
from experiments.services.calls.fields import COST_FIELDS, ROUTING_FIELDS


@admin.register(RoutedCall)
class RoutedCallAdmin(ReadOnlyModelAdmin):
    # What a reader scans for first; kind, source, tier and the rest are filters.
    list_display = (
        "id",
        "created_display",
        "model",
        "cost_display",
        "confidence_display",
        "latency_display",
        "escalated",
        "status",
        "arm",
    )
    list_filter = (
        "status",
        "kind",
        "source",
        "is_shadow",
        "escalated",
        "tier",
        "complexity",
        "provider",
        "experiment",
    )
    search_fields = ("=idempotency_key", "=unit_id", "model", "error_message")
    date_hierarchy = "created_at"
    list_select_related = ("experiment", "arm")
    # Counting a million rows on every page view is slow; show "more" instead.
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "idempotency_key",
                    "kind",
                    "source",
                    "status",
                    "attempts",
                    "job_id",
                    "created_at",
                    "completed_at",
                )
            },
        ),
        (
            "Experiment",
            {"fields": ("experiment", "arm", "phase", "unit_id", "strategy", "is_shadow", "pair")},
        ),
        (
            "Routing",
            {"fields": ("task_type", *ROUTING_FIELDS)},
        ),
        (
            "Cost and time",
            {"fields": COST_FIELDS},
        ),
        (
            "Outcome",
            {
                "fields": (
                    "final_score",
                    "verdict",
                    "error_type",
                    "error_message",
                    "request_pretty",
                    "result_pretty",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        names = [field.name for field in RoutedCall._meta.fields]
        return [*names, "pair", "request_pretty", "result_pretty"]

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj: RoutedCall) -> str:
        return f"{obj.created_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="cost", ordering="cost_usd")
    def cost_display(self, obj: RoutedCall) -> str:
        return usd(obj.cost_usd)

    @admin.display(description="confidence", ordering="confidence")
    def confidence_display(self, obj: RoutedCall) -> str:
        return number(obj.confidence, 2)

    @admin.display(description="latency", ordering="latency_ms")
    def latency_display(self, obj: RoutedCall) -> str:
        return ms(obj.latency_ms)

    @admin.display(description="paired call")
    def pair(self, obj: RoutedCall) -> str:
        other_id = obj.paired_call_id
        if other_id is None:
            other = getattr(obj, "paired_with", None) if obj.pk else None
            other_id = other.pk if other is not None else None
        if other_id is None:
            return "-"
        url = reverse("admin:experiments_routedcall_change", args=[other_id])
        return format_html('<a href="{}">call {}</a>', url, other_id)

    @admin.display(description="request")
    def request_pretty(self, obj: RoutedCall) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.request_payload, indent=2))

    @admin.display(description="result")
    def result_pretty(self, obj: RoutedCall) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.result, indent=2, default=str))
