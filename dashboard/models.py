"""Unmanaged models: no tables, only admin menu entries (the django-rq pattern).

``Dashboard`` is the routing dashboard page; ``Experiments`` lists the experiments with a
link to each one's report, at ``admin/dashboard/experiments/<key>/report/``.
"""

from __future__ import annotations

from django.db import models


class Dashboard(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "routing dashboard"
        verbose_name_plural = "routing dashboard"

    def __str__(self) -> str:
        return "Routing dashboard"


class Experiments(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "experiment report"
        verbose_name_plural = "experiment reports"

    def __str__(self) -> str:
        return "Experiment reports"
