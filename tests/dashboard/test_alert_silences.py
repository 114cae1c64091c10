"""Acknowledging and snoozing alerts from the dashboard (audited, permission-checked)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments.models import AlertSilence
from experiments.services.alert_silences import alert_silence_record, alert_silences_active
from tests.metrics_factories import ensure_default_alert_rules, make_calls, make_experiment

pytestmark = pytest.mark.django_db
URL = "/admin/dashboard/dashboard/"
SILENCE = "/admin/dashboard/dashboard/alerts/silence/"


@pytest.fixture
def firing():
    """The low-confidence alert fires on all traffic."""
    ensure_default_alert_rules()
    experiment, control, smart = make_experiment()
    make_calls([{"confidence": 0.4, "experiment": experiment, "arm": smart}] * 30)


def test_acknowledge_hides_the_action_and_records_who(admin_client, firing):
    """The alert shows its buttons; after Acknowledge it shows who acknowledged it and until
    when, and an AlertSilence row names the user."""
    assert 'value="acknowledge"' in admin_client.get(URL).content.decode()
    response = admin_client.post(
        SILENCE, {"rule": "low-confidence", "kind": "acknowledge", "next": URL}, follow=True
    )
    content = response.content.decode()
    assert 'data-silenced="acknowledge"' in content
    assert "Acknowledged by admin" in content
    silence = AlertSilence.objects.get()
    assert (silence.rule_key, silence.username, silence.kind) == (
        "low-confidence",
        "admin",
        "acknowledge",
    )


def test_snooze_takes_only_the_offered_lengths(admin_client, firing):
    response = admin_client.post(
        SILENCE, {"rule": "low-confidence", "kind": "snooze", "hours": "5"}, follow=True
    )
    assert any("not silenced" in str(m) for m in response.context["messages"])
    assert not AlertSilence.objects.exists()
    admin_client.post(SILENCE, {"rule": "low-confidence", "kind": "snooze", "hours": "4"})
    assert AlertSilence.objects.get().kind == "snooze"


def test_silencing_needs_the_permission(client, django_user_model, firing):
    user = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    client.force_login(user)
    assert "acknowledge" not in client.get(URL).content.decode()
    response = client.post(SILENCE, {"rule": "low-confidence", "kind": "acknowledge"})
    assert response.status_code == 403
    assert not AlertSilence.objects.exists()


def test_expired_silences_are_not_active_and_unknown_rules_are_refused():
    ensure_default_alert_rules()
    past = timezone.now() - timedelta(days=2)
    alert_silence_record(rule_key="low-confidence", kind="acknowledge", now=past)
    assert alert_silences_active() == {}
    with pytest.raises(ValidationError, match="No alert rule"):
        alert_silence_record(rule_key="nope", kind="acknowledge")
