"""The dashboard inside the admin: two menu entries backed by unmanaged models.

- ``admin/dashboard/dashboard/``: the routing dashboard (``DashboardAdmin``);
- ``admin/dashboard/experiments/``: the experiments, each with a link to
  ``admin/dashboard/experiments/<key>/report/``, served by
  ``dashboard.report_views.experiment_report_view`` (the statistics report).

Every view goes through ``admin_site.admin_view``: staff only, login redirect, no caching.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from dashboard import views
from dashboard.models import Dashboard, Experiments
from dashboard.report_actions import experiment_action_view
from dashboard.report_views import experiment_report_view
from experiments.admin.readonly import ReadOnlyModelAdmin
from experiments.reports import experiment_report


def report_decision(experiment) -> dict:
    return experiment_report(experiment=experiment)["decision"]


class _ReadOnlyPageAdmin(ReadOnlyModelAdmin):
    """A page, not a table: visible to every active staff user, nothing to add or change."""

    def has_module_permission(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request, obj=None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def page_context(self, request) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta}

    def _changelist_url(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return path(
            "",
            self.admin_site.admin_view(self.changelist_view),
            name="{}_{}_changelist".format(*info),
        )


@admin.register(Dashboard)
class DashboardAdmin(_ReadOnlyPageAdmin):
    def get_urls(self):
        return [
            path(
                "alerts/silence/",
                self.admin_site.admin_view(views.alert_silence_view),
                name="dashboard_alert_silence",
            ),
            self._changelist_url(),
        ]

    def changelist_view(self, request, extra_context=None):
        return views.dashboard_page(request, context=self.page_context(request))


@admin.register(Experiments)
class ExperimentsAdmin(_ReadOnlyPageAdmin):
    def get_urls(self):
        return [
            path(
                "<slug:key>/report/",
                self.admin_site.admin_view(self.report_view),
                name="dashboard_experiment_report",
            ),
            path(
                "<slug:key>/report/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="dashboard_experiment_action",
            ),
            self._changelist_url(),
        ]

    def changelist_view(self, request, extra_context=None):
        return views.experiments_page(request, context=self.page_context(request))

    def report_view(self, request, key: str):
        """The statistics report of one experiment."""
        return experiment_report_view(request, key=key)

    def action_view(self, request, key: str, action: str):
        """Ship / ramp / roll back from the report (confirmed, audited, permission-checked)."""
        return experiment_action_view(
            request, key=key, action=action, report_decision=report_decision
        )
