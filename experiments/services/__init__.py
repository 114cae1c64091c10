"""Writes of the experiments app (HackSoft style): keyword-only, typed, validated, atomic.

Interfaces (admin actions, CLI subcommands, API views, RQ jobs) parse their input, call
one of these, and report. Reads that several places share live in ``experiments.selectors``.
"""

from experiments.services.assignment import assignment_get_or_create, route_for_unit
from experiments.services.calls import (
    QueueUnavailableError,
    routed_call_enqueue,
    routed_call_execute,
    routed_call_fail,
    routed_call_for_job,
    routed_call_record,
    routed_call_shadow_enqueue,
    routed_calls_reconcile,
)
from experiments.services.lifecycle import (
    audit_log_record,
    experiment_conclude,
    experiment_create,
    experiment_pause,
    experiment_phase_sync,
    experiment_ramp,
    experiment_resume,
    experiment_rollback,
    experiment_start,
    experiment_stop,
    experiment_validate_arms,
)

__all__ = [
    "QueueUnavailableError",
    "assignment_get_or_create",
    "audit_log_record",
    "experiment_conclude",
    "experiment_create",
    "experiment_pause",
    "experiment_phase_sync",
    "experiment_ramp",
    "experiment_resume",
    "experiment_rollback",
    "experiment_start",
    "experiment_stop",
    "experiment_validate_arms",
    "route_for_unit",
    "routed_call_enqueue",
    "routed_call_execute",
    "routed_call_fail",
    "routed_call_for_job",
    "routed_call_record",
    "routed_call_shadow_enqueue",
    "routed_calls_reconcile",
]
