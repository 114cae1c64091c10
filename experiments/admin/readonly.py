"""A model admin that only shows: no add, change or delete (append-only records, pages)."""

from __future__ import annotations

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows are written by the platform, never by hand: the record is append-only (old
    calls leave through ``routing prune-calls``, not a Delete button)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
