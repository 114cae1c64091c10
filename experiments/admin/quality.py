"""Admin: quality signals (read-only: the platform, the judge and users write them)."""

from __future__ import annotations

from django.contrib import admin

from experiments.admin.readonly import ReadOnlyModelAdmin
from experiments.models import QualitySignal


@admin.register(QualitySignal)
class QualitySignalAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "created_at",
        "source",
        "status",
        "value",
        "call",
        "judge_model",
        "prompt_version",
        "cost_usd",
        "simulated",
    )
    list_filter = ("source", "status", "simulated", "prompt_version", "experiment")
    search_fields = ("=call__id", "judge_model")
    date_hierarchy = "created_at"
    list_select_related = ("call",)
    raw_id_fields = ("call",)
    show_full_result_count = False
