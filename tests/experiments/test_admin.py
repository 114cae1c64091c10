"""Experiments admin: arms inline with validation, lifecycle actions, audit log, calls."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from experiments import services
from experiments.models import AuditLogEntry, Experiment, Phase
from tests.experiments.factories import engine_result, make_experiment
from tests.metrics_factories import make_calls

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:experiments_experiment_changelist"


def _experiment_post(**overrides) -> dict:
    data = {
        "key": "admin-made",
        "name": "Made in the admin",
        "hypothesis": "Smart routing cuts cost at the same quality.",
        "unit_type": "user",
        "traffic_percentage": "1",
        "ramp_schedule": "[1, 5, 25, 50, 100]",
        "shadow_percentage": "0",
        "alpha": "0.05",
        "sequential_testing": "on",
        "minimum_sample_per_arm": "200",
        "cuped_lookback_days": "14",
        "guardrail_quality_drop_pct": "2",
        "quality_signal": "agreement",
        "guardrail_error_rate_rise_pts": "1",
        "guardrail_latency_p95_rise_pct": "10",
        "arms-TOTAL_FORMS": "2",
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "1000",
        "arms-0-position": "0",
        "arms-0-key": "original_council",
        "arms-0-strategy": "original_council",
        "arms-0-weight": "50",
        "arms-0-is_control": "on",
        "arms-0-enable_escalation": "unknown",
        "arms-0-cost_optimization_mode": "unknown",
        "arms-1-position": "1",
        "arms-1-key": "smart_routing",
        "arms-1-strategy": "smart_routing",
        "arms-1-weight": "50",
        "arms-1-escalation_threshold": "0.6",
        "arms-1-enable_escalation": "unknown",
        "arms-1-cost_optimization_mode": "unknown",
    }
    data.update(overrides)
    return data


def _action(admin_client, action: str, *experiments, **extra):
    data = {"action": action, "_selected_action": [str(e.pk) for e in experiments], **extra}
    return admin_client.post(reverse(CHANGELIST), data, follow=True)


def _messages(response) -> str:
    return " ".join(str(message) for message in response.context["messages"])


def test_create_an_experiment_with_its_arms_inline(admin_client):
    """The add form creates the experiment and both arms, and audits who created it."""
    response = admin_client.post(
        reverse("admin:experiments_experiment_add"), _experiment_post(), follow=True
    )
    assert response.status_code == 200
    experiment = Experiment.objects.get(key="admin-made")
    arms = list(experiment.arms.order_by("position"))
    assert [(arm.key, arm.weight) for arm in arms] == [
        ("original_council", 50),
        ("smart_routing", 50),
    ]
    assert arms[1].escalation_threshold == 0.6
    entry = AuditLogEntry.objects.get(experiment=experiment)
    assert entry.action == "create" and entry.username == "admin"


def test_a_new_experiment_starts_at_the_first_ramp_step_with_two_default_arms(admin_client):
    """The add form offers 1% traffic and a control/smart pair; saving it unchanged keeps
    both arms (pre-filled rows count as filled in)."""
    page = admin_client.get(reverse("admin:experiments_experiment_add"))
    assert page.context["adminform"].form.initial["traffic_percentage"] == 1
    content = page.content.decode()
    assert 'value="control"' in content and 'value="smart"' in content
    data = _experiment_post(
        **{
            "arms-0-key": "control",
            "arms-0-name": "Original council",
            "arms-1-key": "smart",
            "arms-1-name": "Smart routing",
            "arms-1-escalation_threshold": "",
        }
    )
    admin_client.post(reverse("admin:experiments_experiment_add"), data)
    experiment = Experiment.objects.get(key="admin-made")
    assert list(experiment.arms.order_by("position").values_list("key", "strategy")) == [
        ("control", "original_council"),
        ("smart", "smart_routing"),
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"arms-1-weight": "40"}, "Arm weights must sum to 100; they sum to 90."),
        (
            {"arms-TOTAL_FORMS": "1", "arms-0-weight": "100"},
            "An experiment needs at least two arms",
        ),
        ({"traffic_percentage": "150"}, "less than or equal to 100"),
        ({"traffic_percentage": "-5"}, "greater than or equal to 0"),
        ({"arms-0-is_control": ""}, "Mark exactly one arm as the control"),
        ({"ramp_schedule": "[1, 500]"}, "percentages between 0 and 100"),
    ],
)
def test_invalid_configurations_are_refused_with_a_message(admin_client, overrides, message):
    """Bad weights, one arm, a percentage outside 0-100 or no control: the form says why."""
    response = admin_client.post(
        reverse("admin:experiments_experiment_add"), _experiment_post(**overrides)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Experiment.objects.filter(key="admin-made").exists()


def test_start_pause_resume_stop_actions(admin_client):
    """Each action changes the state and reports it."""
    experiment = make_experiment(status="draft")
    response = _action(admin_client, "start_experiments", experiment)
    assert "Started: " in _messages(response)
    experiment.refresh_from_db()
    assert experiment.status == "running"
    _action(admin_client, "pause_experiments", experiment)
    experiment.refresh_from_db()
    assert experiment.status == "paused"
    _action(admin_client, "resume_experiments", experiment)
    experiment.refresh_from_db()
    assert experiment.status == "running"
    _action(admin_client, "stop_experiments", experiment)
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    actions = list(
        AuditLogEntry.objects.filter(experiment=experiment).values_list("action", flat=True)
    )
    assert {"start", "pause", "resume", "stop"} <= set(actions)


def test_start_of_a_second_experiment_on_the_same_units_is_refused(admin_client):
    """Two running experiments on one unit space: the second start shows an error."""
    make_experiment(key="already-on")
    second = make_experiment(key="wants-on", status="draft")
    response = _action(admin_client, "start_experiments", second)
    assert "'already-on' is already running on the unit space 'user'" in _messages(response)
    second.refresh_from_db()
    assert second.status == "draft"


def test_ramp_shows_the_next_step_and_applies_it(admin_client):
    """Ramp asks first (showing the next step of 1, 5, 25, 50, 100), then ramps."""
    experiment = make_experiment(traffic_percentage=1)
    page = _action(admin_client, "ramp_experiments", experiment)
    assert page.status_code == 200
    content = page.content.decode()
    assert "5.0%" in content and "1, 5, 25, 50, 100" in content
    response = _action(admin_client, "ramp_experiments", experiment, apply="1", percentage="")
    assert "Ramped: " in _messages(response)
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 5
    _action(admin_client, "ramp_experiments", experiment, apply="1", percentage="50")
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 50


def test_ramp_to_a_percentage_outside_0_100_is_refused(admin_client):
    """A percentage of 150 re-shows the form with the error and changes nothing."""
    experiment = make_experiment(traffic_percentage=5)
    response = _action(admin_client, "ramp_experiments", experiment, apply="1", percentage="150")
    assert "between 0 and 100" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.traffic_percentage == 5


def test_ramp_of_a_stopped_experiment_is_refused(admin_client):
    """Ramping a stopped experiment shows why it cannot be ramped."""
    experiment = make_experiment(status="stopped")
    response = _action(admin_client, "ramp_experiments", experiment, apply="1", percentage="50")
    assert "Cannot ramp experiment" in _messages(response)
    assert "it is stopped" in _messages(response)


def test_rollback_sends_all_traffic_to_the_original_arm(admin_client):
    """Rollback stops the experiment and serves the control arm."""
    experiment = make_experiment()
    response = _action(admin_client, "rollback_experiments", experiment)
    assert "Rolled back: " in _messages(response)
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert experiment.serving_arm.key == "original_council"


def test_conclude_asks_for_the_winner_then_ships_it(admin_client):
    """Conclude offers the arms, then serves the chosen one to all traffic."""
    experiment = make_experiment()
    page = _action(admin_client, "conclude_experiment", experiment)
    assert "smart_routing (smart_routing)" in page.content.decode()
    _action(admin_client, "conclude_experiment", experiment, apply="1", winner="smart_routing")
    experiment.refresh_from_db()
    assert experiment.status == "concluded" and experiment.serving_arm.key == "smart_routing"


def test_export_report_json_downloads_the_versioned_report(admin_client):
    """The export action answers with the statistics report as a JSON attachment."""
    experiment = make_experiment(key="exported")
    services.routed_call_record(
        kind="execute",
        source="sdk",
        request_payload={"text": "x"},
        result=engine_result(),
        experiment=experiment,
        arm=experiment.arms.first(),
    )
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "export_report_json", "_selected_action": [str(experiment.pk)]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert 'filename="exported-report.json"' in response["Content-Disposition"]
    report = json.loads(response.content)
    assert "schema_version" in report


def test_editing_arms_of_a_running_experiment_starts_a_new_phase(admin_client):
    """Changing weights in the change form opens phase 2 and warns about it."""
    experiment = make_experiment(key="edited")
    arms = list(experiment.arms.order_by("position"))
    data = _experiment_post(
        key="edited",
        name=experiment.name,
        traffic_percentage="100",
        **{
            "arms-INITIAL_FORMS": "2",
            "arms-0-id": str(arms[0].pk),
            "arms-0-experiment": str(experiment.pk),
            "arms-0-weight": "30",
            "arms-1-id": str(arms[1].pk),
            "arms-1-experiment": str(experiment.pk),
            "arms-1-weight": "70",
        },
    )
    response = admin_client.post(
        reverse("admin:experiments_experiment_change", args=[experiment.pk]), data, follow=True
    )
    assert "phase 2 started with a new hash seed" in _messages(response)
    phase = Phase.objects.get(experiment=experiment, ended_at__isnull=True)
    assert phase.number == 2 and phase.weights == [0.3, 0.7]


def test_change_page_shows_the_audit_log(admin_client):
    """The experiment page lists who did what."""
    experiment = make_experiment(key="logged", traffic_percentage=1)
    services.experiment_ramp(experiment=experiment)
    page = admin_client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk]))
    content = page.content.decode()
    assert "Ramped from 1% to 5% of traffic." in content
    assert "Started at 1% of traffic" in content


def test_calls_admin_lists_and_shows_calls_read_only(admin_client):
    """The calls changelist and a call's page load; calls cannot be added by hand."""
    call = services.routed_call_record(
        kind="evaluate",
        source="sdk",
        request_payload={"script": "s"},
        result=engine_result(kind="evaluate"),
    )
    listing = admin_client.get(reverse("admin:experiments_routedcall_changelist"))
    assert listing.status_code == 200 and "gpt-4o-mini" in listing.content.decode()
    page = admin_client.get(reverse("admin:experiments_routedcall_change", args=[call.pk]))
    assert page.status_code == 200 and "approve" in page.content.decode()
    assert admin_client.get(reverse("admin:experiments_routedcall_add")).status_code == 403


def test_audit_log_admin_is_read_only(admin_client):
    """The global audit log lists entries and refuses to add any."""
    make_experiment(key="audited")
    listing = admin_client.get(reverse("admin:experiments_auditlogentry_changelist"))
    assert listing.status_code == 200 and "audited" in listing.content.decode()
    assert admin_client.get(reverse("admin:experiments_auditlogentry_add")).status_code == 403


@pytest.mark.django_db
def test_recorded_calls_cannot_be_deleted_and_list_money_and_units(admin_client):
    """The call record is append-only (no Delete, no delete action); the list shows the
    model, cost in $, confidence and latency in ms."""
    (call,) = make_calls([{"cost_usd": "0.0021857500", "latency_ms": 312.0}], rebuild=False)
    listing = admin_client.get("/admin/experiments/routedcall/").content.decode()
    assert "$0.00219" in listing and "312 ms" in listing and "gpt-4o-mini" in listing
    assert 'value="delete_selected"' not in listing
    detail = admin_client.get(f"/admin/experiments/routedcall/{call.pk}/change/").content.decode()
    assert "deletelink" not in detail
    assert admin_client.post(f"/admin/experiments/routedcall/{call.pk}/delete/").status_code == 403
