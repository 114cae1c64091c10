"""Small factories for the dashboard, analytics, alerts and CLI tests: routed calls and
their rollups, an experiment with two arms, a staff user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

from experiments.models import Arm, Experiment, Phase, RoutedCall

_sequence = count()


def recent_hour(hours_ago: int = 0) -> datetime:
    """A moment ten minutes into an hour, ``hours_ago`` hours before the current one."""
    now = datetime.now(UTC).replace(minute=10, second=0, microsecond=0)
    if now > datetime.now(UTC):
        now -= timedelta(hours=1)
    return now - timedelta(hours=hours_ago)


def call_fields(**fields) -> dict:
    """The fields of a successful simple call on the mini tier (override any)."""
    defaults = {
        "idempotency_key": f"metrics-call-{next(_sequence)}",
        "kind": RoutedCall.Kind.EXECUTE,
        "source": "sdk",
        "status": RoutedCall.Status.SUCCESS,
        "strategy": "smart_routing",
        "complexity": "simple",
        "tier": "mini",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "task_type": "analysis",
        "cost_usd": Decimal("0.0010"),
        "baseline_cost_usd": Decimal("0.0100"),
        "latency_ms": 100.0,
        "confidence": 0.8,
        "input_tokens": 100,
        "output_tokens": 50,
        "completed_at": recent_hour(),
    }
    defaults.update(fields)
    return defaults


def make_calls(specs: list[dict], *, rebuild: bool = True) -> list[RoutedCall]:
    """Create calls (one per spec of field overrides) and rebuild the rollups from them."""
    from experiments.rollups import rollups_rebuild

    calls = RoutedCall.objects.bulk_create([RoutedCall(**call_fields(**spec)) for spec in specs])
    if rebuild:
        rollups_rebuild()
    return calls


def make_experiment(
    key: str = "smart-vs-council", *, status: str = Experiment.Status.RUNNING, **fields
) -> tuple[Experiment, Arm, Arm]:
    """A running experiment with a control (original council) and a smart arm, 50/50."""
    experiment = Experiment.objects.create(
        key=key, name=key.replace("-", " "), status=status, **fields
    )
    control = Arm.objects.create(
        experiment=experiment,
        key="council",
        strategy="original_council",
        is_control=True,
        weight=50,
        position=0,
    )
    smart = Arm.objects.create(
        experiment=experiment, key="smart", strategy="smart_routing", weight=50, position=1
    )
    Phase.objects.create(
        experiment=experiment,
        number=1,
        hash_seed=f"{key}-1",
        arm_keys=["council", "smart"],
        weights=[0.5, 0.5],
    )
    return experiment, control, smart


def ensure_default_alert_rules() -> None:
    """The rules the data migration seeds (a transactional test's flush may have removed
    them), taken from the migration itself so the tests follow its defaults."""
    import importlib

    from experiments.models import AlertRule

    migration = importlib.import_module("experiments.migrations.0004_seed_alert_rules")
    for rule in migration.DEFAULT_RULES:
        AlertRule.objects.get_or_create(key=rule["key"], defaults=rule)


def make_staff_user(username: str = "staff", password: str = "a-long-test-password-42"):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username=username, password=password, is_staff=True, is_superuser=True
    )
    return user, password
