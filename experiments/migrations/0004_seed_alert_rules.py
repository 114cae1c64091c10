"""Seed the default alert rules (the user's guide thresholds plus experiment health).

Self-contained on purpose: a data migration must not import app code that may change.
Rules an admin already edited (same key) are left alone.
"""

from decimal import Decimal

from django.db import migrations

DEFAULT_RULES = [
    {
        "key": "low-confidence",
        "name": "Low average confidence",
        "metric": "avg_confidence",
        "threshold": Decimal("0.6"),
        "level": "warning",
        "action": (
            "Use better models: raise the escalation threshold (ROUTER_ESCALATION_THRESHOLD) "
            "or turn cost optimization off, so more requests reach stronger models."
        ),
    },
    {
        "key": "high-escalation",
        "name": "High escalation rate",
        "metric": "escalation_rate",
        "threshold": Decimal("30"),
        "level": "warning",
        "action": (
            "Review the complexity classification: too many requests start on a tier too weak "
            "for them (see the breakdown by complexity and `routing cost`)."
        ),
    },
    {
        "key": "high-cost",
        "name": "High cost per request",
        "metric": "cost_per_request_usd",
        "threshold": Decimal("0.01"),
        "level": "warning",
        "action": (
            "Enable cost optimization (ROUTER_COST_OPTIMIZATION=true) and check the complexity "
            "classification: simple requests should run on mini models."
        ),
    },
    {
        "key": "error-rate-rise",
        "name": "Error rate above its baseline",
        "metric": "error_rate_rise",
        "threshold": Decimal("1"),
        "level": "critical",
        "action": (
            "Check provider errors (admin: routed calls filtered by status error) and the "
            "provider keys; roll the experiment back if the treatment arm causes them."
        ),
    },
    {
        "key": "srm",
        "name": "Sample-ratio mismatch",
        "metric": "srm",
        "threshold": Decimal("0.001"),
        "level": "critical",
        "action": (
            "Do not trust this experiment's results: arms received traffic in a different "
            "ratio than configured. Check assignment and recording for lost calls, then "
            "restart the experiment in a new phase."
        ),
    },
    {
        "key": "guardrail",
        "name": "Experiment guardrail failing",
        "metric": "guardrail",
        "threshold": None,
        "level": "critical",
        "action": (
            "Open the experiment report; if the guardrail failure holds, pause the experiment "
            "or roll it back to the original arm."
        ),
    },
]


def seed_rules(apps, schema_editor):
    AlertRule = apps.get_model("experiments", "AlertRule")
    for rule in DEFAULT_RULES:
        AlertRule.objects.get_or_create(key=rule["key"], defaults=rule)


def unseed_rules(apps, schema_editor):
    AlertRule = apps.get_model("experiments", "AlertRule")
    AlertRule.objects.filter(key__in=[rule["key"] for rule in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0003_alert_rule"),
    ]

    operations = [
        migrations.RunPython(seed_rules, unseed_rules),
    ]
