"""Django models of the experiments app, one module per aggregate."""

from experiments.models.alert_silences import AlertSilence
from experiments.models.alerts import AlertRule
from experiments.models.audit import AuditLogEntry
from experiments.models.calls import RoutedCall
from experiments.models.experiment import Arm, Assignment, Experiment, Phase
from experiments.models.quality import QualitySignal
from experiments.models.rollups import ArmRollup, CallRollup, UnitRollup
from experiments.models.rollups_daily import CallRollupDaily, CallRollupDay

__all__ = [
    "AlertRule",
    "AlertSilence",
    "Arm",
    "ArmRollup",
    "Assignment",
    "AuditLogEntry",
    "CallRollup",
    "CallRollupDaily",
    "CallRollupDay",
    "Experiment",
    "Phase",
    "QualitySignal",
    "RoutedCall",
    "UnitRollup",
]
