"""Report actions (dashboard.report_actions): confirmed, audited, permission-checked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from experiments.models import AuditLogEntry, Experiment
from tests.dashboard.test_report_views import seed_report_experiment

pytestmark = pytest.mark.django_db
REPORT = "/admin/dashboard/experiments/{key}/report/"
ACTION = "/admin/dashboard/experiments/{key}/report/{action}/"


@pytest.fixture
def experiment():
    experiment = seed_report_experiment()
    Experiment.objects.filter(pk=experiment.pk).update(traffic_percentage=5)
    return experiment


def test_report_offers_ship_ramp_and_rollback_to_a_user_with_permission(admin_client, experiment):
    """The winner's report shows the three actions, each linking to its confirmation."""
    content = admin_client.get(REPORT.format(key=experiment.key)).content.decode()
    assert 'data-action="ship"' in content and "Ship smart" in content
    assert 'data-action="ramp"' in content and "Ramp to 25%" in content
    assert 'data-action="rollback"' in content


def test_get_confirms_and_changes_nothing(admin_client, experiment):
    """GET only asks; the experiment and the audit log stay as they were."""
    response = admin_client.get(ACTION.format(key=experiment.key, action="ramp"))
    assert response.status_code == 200
    assert "from 5% to 25%" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 5
    assert not AuditLogEntry.objects.filter(action="ramp").exists()


def test_post_ramps_and_writes_an_audit_row(admin_client, experiment):
    """POST ramps to the next step, says so, and logs who did it."""
    response = admin_client.post(ACTION.format(key=experiment.key, action="ramp"), follow=True)
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 25
    assert any("from 5% to 25%" in str(m) for m in response.context["messages"])
    entry = AuditLogEntry.objects.get(experiment=experiment, action="ramp")
    assert entry.username == "admin"


def test_post_rollback_stops_and_serves_the_control(admin_client, experiment):
    admin_client.post(ACTION.format(key=experiment.key, action="rollback"))
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.STOPPED
    assert experiment.serving_arm.key == "council"
    assert AuditLogEntry.objects.filter(experiment=experiment, action="rollback").exists()


def test_staff_without_change_permission_see_no_actions_and_get_403(
    client, django_user_model, experiment
):
    """Viewing the report needs staff; acting on it needs change_experiment."""
    user = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    client.force_login(user)
    content = client.get(REPORT.format(key=experiment.key)).content.decode()
    assert 'id="report-actions"' not in content
    assert client.post(ACTION.format(key=experiment.key, action="ramp")).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="change_experiment"))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert client.post(ACTION.format(key=experiment.key, action="ramp")).status_code == 302
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 25


def test_unknown_or_impossible_actions_never_500(admin_client, experiment):
    """An unknown action is a 404; one the state does not allow redirects with a message."""
    assert admin_client.get(ACTION.format(key=experiment.key, action="explode")).status_code == 404
    assert admin_client.get(ACTION.format(key="nope", action="ramp")).status_code == 404
    Experiment.objects.filter(pk=experiment.pk).update(traffic_percentage=100)
    response = admin_client.post(ACTION.format(key=experiment.key, action="ramp"), follow=True)
    assert any("not possible" in str(m) for m in response.context["messages"])
