"""Reads of the experiments app that several interfaces share (admin, API, CLI, facade).

Each selector does a fixed, small number of queries (pinned in tests with
``django_assert_num_queries``).
"""

from __future__ import annotations

from django.db.models import Avg, Count, Prefetch, Q, QuerySet, Sum

from experiments.models import Arm, AuditLogEntry, Experiment, RoutedCall


def routed_call_get(*, call_id: int) -> RoutedCall | None:
    """One routed call with its experiment and arm (one query), or None."""
    return (
        RoutedCall.objects.select_related("experiment", "arm", "phase").filter(pk=call_id).first()
    )


def experiment_list(*, status: str | None = None) -> QuerySet[Experiment]:
    """Experiments, newest first, with their arms (two queries when evaluated)."""
    queryset = Experiment.objects.select_related("serving_arm").prefetch_related(
        Prefetch("arms", queryset=Arm.objects.order_by("position", "id"))
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def experiment_get(*, key: str) -> Experiment | None:
    """One experiment by key with its arms (two queries), or None."""
    return experiment_list().filter(key=key).first()


def experiment_running(*, unit_type: str | None = None) -> Experiment | None:
    """The most recently started running experiment (of ``unit_type`` when given)."""
    queryset = Experiment.objects.select_related("serving_arm").filter(
        status=Experiment.Status.RUNNING
    )
    if unit_type:
        queryset = queryset.filter(unit_type=unit_type)
    return queryset.order_by("-started_at", "-id").first()


def experiment_default() -> Experiment | None:
    """The experiment a caller means when naming none: the latest running one, else the
    most recently created one."""
    return experiment_running() or Experiment.objects.order_by("-created_at", "-id").first()


def experiment_arm_summary(*, experiment: Experiment) -> list[dict]:
    """Per arm: calls, errors, mean cost, mean quality, mean confidence, mean latency,
    escalation rate (one aggregate query over primary, non-shadow calls).

    A plain summary for when the statistics report is not available; the report itself
    reads the rollups.
    """
    finished = Q(calls__status__in=(RoutedCall.Status.SUCCESS, RoutedCall.Status.ERROR))
    primary = Q(calls__is_shadow=False) & Q(calls__experiment=experiment) & finished
    rows = (
        Arm.objects.filter(experiment=experiment)
        .order_by("position", "id")
        .annotate(
            calls_n=Count("calls", filter=primary),
            errors_n=Count("calls", filter=primary & Q(calls__status=RoutedCall.Status.ERROR)),
            escalated_n=Count("calls", filter=primary & Q(calls__escalated=True)),
            cost_usd_sum=Sum("calls__cost_usd", filter=primary),
            baseline_cost_usd_sum=Sum("calls__baseline_cost_usd", filter=primary),
            quality_mean=Avg("calls__final_score", filter=primary),
            confidence_mean=Avg("calls__confidence", filter=primary),
            latency_ms_mean=Avg("calls__latency_ms", filter=primary),
        )
    )
    summary = []
    for arm in rows:
        n = arm.calls_n
        summary.append(
            {
                "arm": arm.key,
                "strategy": arm.strategy,
                "is_control": arm.is_control,
                "weight": arm.weight,
                "calls": n,
                "errors": arm.errors_n,
                "error_rate": arm.errors_n / n if n else None,
                "escalation_rate": arm.escalated_n / n if n else None,
                "cost_usd_total": float(arm.cost_usd_sum or 0),
                "baseline_cost_usd_total": float(arm.baseline_cost_usd_sum or 0),
                "cost_usd_mean": float(arm.cost_usd_sum or 0) / n if n else None,
                "quality_mean": arm.quality_mean,
                "confidence_mean": arm.confidence_mean,
                "latency_ms_mean": arm.latency_ms_mean,
            }
        )
    return summary


def audit_log_list(*, experiment: Experiment | None = None) -> QuerySet[AuditLogEntry]:
    """The audit log, newest first (of one experiment when given)."""
    queryset = AuditLogEntry.objects.select_related("user")
    if experiment is not None:
        queryset = queryset.filter(experiment=experiment)
    return queryset.order_by("-created_at", "-id")


def shadow_pairs(*, experiment: Experiment) -> QuerySet[RoutedCall]:
    """Finished primary calls of the experiment whose shadow twin also finished."""
    done = (RoutedCall.Status.SUCCESS, RoutedCall.Status.ERROR)
    return (
        RoutedCall.objects.filter(
            experiment=experiment,
            is_shadow=False,
            status__in=done,
            paired_call__isnull=False,
            paired_call__status__in=done,
        )
        .select_related("paired_call", "arm", "paired_call__arm")
        .order_by("id")
    )
