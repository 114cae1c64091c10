"""Acknowledge or snooze a dashboard alert (one append-only ``AlertSilence`` row each)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments.models import AlertRule, AlertSilence

#: How long an acknowledgement hides an alert (it comes back if it still fires then).
ACKNOWLEDGE_HOURS = 24
#: The snooze lengths offered, in hours.
SNOOZE_HOURS = (1, 4, 24, 168)


def alert_silence_record(
    *,
    rule_key: str,
    experiment_key: str = "",
    kind: str,
    hours: int | None = None,
    user: Any | None = None,
    note: str = "",
    now: datetime | None = None,
) -> AlertSilence:
    """Silence the alert of ``rule_key`` (for ``experiment_key``, "" = all traffic):
    acknowledged for a day, or snoozed for ``hours`` (one of ``SNOOZE_HOURS``)."""
    if not AlertRule.objects.filter(key=rule_key).exists():
        raise ValidationError(f"No alert rule {rule_key!r}.")
    if kind == AlertSilence.Kind.ACKNOWLEDGE:
        hours = ACKNOWLEDGE_HOURS
    elif kind == AlertSilence.Kind.SNOOZE:
        if hours not in SNOOZE_HOURS:
            raise ValidationError(
                f"Snooze for one of {', '.join(str(h) for h in SNOOZE_HOURS)} hours, not {hours!r}."
            )
    else:
        raise ValidationError(f"Unknown kind {kind!r}: acknowledge or snooze.")
    real_user = user if getattr(user, "is_authenticated", False) and user.pk else None
    silence = AlertSilence(
        rule_key=rule_key,
        experiment_key=experiment_key or "",
        kind=kind,
        until=(now or timezone.now()) + timedelta(hours=hours),
        note=note[:500],
        user=real_user,
        username=real_user.get_username() if real_user else "",
    )
    silence.full_clean()
    silence.save()
    return silence


def alert_silences_active(*, now: datetime | None = None) -> dict[tuple[str, str], AlertSilence]:
    """The newest unexpired silence per (rule key, experiment key)."""
    active: dict[tuple[str, str], AlertSilence] = {}
    for silence in AlertSilence.objects.filter(until__gt=now or timezone.now()).order_by(
        "-created_at", "-id"
    ):
        active.setdefault((silence.rule_key, silence.experiment_key), silence)
    return active
