"""The alert rules in the admin: listed, edited, and refused with a message when wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest

from experiments.models import AlertRule
from tests.metrics_factories import ensure_default_alert_rules

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_user(
        username="ops", password="unused", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


def _form(rule: AlertRule, **changes) -> dict:
    data = {
        "key": rule.key,
        "name": rule.name,
        "enabled": "on" if rule.enabled else "",
        "metric": rule.metric,
        "threshold": "" if rule.threshold is None else str(rule.threshold),
        "min_requests": rule.min_requests,
        "baseline_hours": rule.baseline_hours,
        "level": rule.level,
        "action": rule.action,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_rules_are_listed_with_their_thresholds(staff_client):
    """The changelist shows every default rule."""
    ensure_default_alert_rules()
    content = staff_client.get("/admin/experiments/alertrule/").content.decode()
    for name in ("Low average confidence", "High escalation rate", "High cost per request"):
        assert name in content


def test_a_threshold_is_edited_in_the_admin(staff_client):
    """Raising the low-confidence threshold to 0.7 and making it critical is saved."""
    ensure_default_alert_rules()
    rule = AlertRule.objects.get(key="low-confidence")
    response = staff_client.post(
        f"/admin/experiments/alertrule/{rule.pk}/change/",
        _form(rule, threshold="0.7", level="critical"),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == Decimal("0.7") and rule.level == "critical"


def test_an_impossible_threshold_is_refused_with_its_unit(staff_client):
    """A confidence threshold of 1.5 re-shows the form with a message naming the range."""
    ensure_default_alert_rules()
    rule = AlertRule.objects.get(key="low-confidence")
    response = staff_client.post(
        f"/admin/experiments/alertrule/{rule.pk}/change/", _form(rule, threshold="1.5")
    )
    assert response.status_code == 200
    assert "Confidence is between 0 and 1" in response.content.decode()
    rule.refresh_from_db()
    assert rule.threshold == Decimal("0.6")
