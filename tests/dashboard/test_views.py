"""The dashboard pages in the admin: staff only, empty state, filters, charts data, links."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse

from dashboard import admin as dashboard_admin
from dashboard.views import alert_advice
from tests.dashboard.pages import BUNDLE_TRACE_TYPES, external_scripts, trace_types
from tests.metrics_factories import (
    ensure_default_alert_rules,
    make_calls,
    make_experiment,
    recent_hour,
)

pytestmark = pytest.mark.django_db
URL = "/admin/dashboard/dashboard/"


def _charts(response) -> list[dict]:
    content = response.content.decode()
    start = content.index('<script id="dashboard-charts-data" type="application/json">')
    start = content.index(">", start) + 1
    return json.loads(content[start : content.index("</script>", start)])


def test_anonymous_users_are_sent_to_the_login_page(client):
    """Without a session the dashboard redirects to the admin login."""
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_users_cannot_see_the_dashboard(client, django_user_model):
    """An active user without staff status is sent to the login page too."""
    user = django_user_model.objects.create_user(username="plain", password="pw-12345-long")
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_permissions_see_the_dashboard_in_the_menu(client, django_user_model):
    """Any active staff user may open the dashboard and finds it on the admin index."""
    user = django_user_model.objects.create_user(
        username="staff", password="pw-12345", is_staff=True
    )
    client.force_login(user)
    assert client.get(URL).status_code == 200
    index = client.get("/admin/").content.decode()
    assert URL in index and "/admin/dashboard/experiments/" in index


def test_empty_database_shows_a_helpful_empty_state(admin_client):
    """No calls: a 200 page that explains how to get data, no charts, no plotly.js."""
    response = admin_client.get(URL)
    content = response.content.decode()
    assert response.status_code == 200
    assert "No routed calls yet" in content
    assert "make demo" in content
    assert 'class="dash-plot"' not in content
    assert "plotly-basic.min.js" not in content


def test_window_without_calls_suggests_all_time(admin_client):
    """Calls exist, only outside the window: the page says so and links to all time."""
    make_calls([{"completed_at": recent_hour(24 * 20)}])
    content = admin_client.get(URL + "?window=24h").content.decode()
    assert "No routed calls in this window" in content
    assert "?window=all" in content


def test_dashboard_with_data_renders_cards_alerts_and_eight_charts(admin_client):
    """Seeded calls give KPI cards, the low-confidence alert and eight Plotly figures; plotly.js
    comes from this site's static files, never a CDN."""
    ensure_default_alert_rules()
    experiment, control, smart = make_experiment()
    make_calls([{"confidence": 0.4, "experiment": experiment, "arm": smart}] * 30)
    response = admin_client.get(URL)
    content = response.content.decode()
    assert response.status_code == 200
    assert "/static/dashboard/plotly-basic.min.js" in content
    assert external_scripts(content) == []
    assert 'data-rule="low-confidence"' in content
    assert "Average confidence is 0.400" in content
    charts = _charts(response)
    assert [chart["key"] for chart in charts] == [
        "savings",
        "cost-by-model",
        "cost-by-arm",
        "confidence",
        "escalation",
        "latency",
        "complexity-mix",
        "model-mix",
    ]
    assert all(chart["figure"]["data"] for chart in charts)
    assert trace_types(charts) <= BUNDLE_TRACE_TYPES  # the vendored bundle draws every chart
    assert "/admin/dashboard/experiments/smart-vs-council/report/" in content


def test_filters_select_window_and_experiment(admin_client):
    """?window=24h&experiment=KEY shows only that experiment's recent calls."""
    experiment, control, smart = make_experiment()
    make_calls(
        [{"experiment": experiment, "arm": smart}] * 3
        + [{}] * 2
        + [{"completed_at": recent_hour(100)}]
    )
    response = admin_client.get(URL + "?window=24h&experiment=smart-vs-council")
    assert response.context["data"]["overview"]["total_requests"] == 3
    assert response.context["selected_window"] == "24h"
    assert response.context["selected_experiment"] == "smart-vs-council"
    assert admin_client.get(URL + "?window=all").context["data"]["overview"]["total_requests"] == 6


def test_bad_filters_fall_back_with_a_message_not_an_error(admin_client):
    """An unknown window or experiment shows a message and the default view (200, not 500)."""
    make_experiment()
    response = admin_client.get(URL + "?window=yesterday&experiment=nope")
    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    assert any("Unknown time window" in message for message in messages)
    assert response.context["selected_window"] == "7d"
    response = admin_client.get(URL + "?experiment=nope")
    assert any("No experiment with key 'nope'" in str(m) for m in response.context["messages"])


def test_dashboard_page_query_count_is_pinned(admin_client, django_assert_num_queries):
    """Session and user (2), dashboard data once the closed days are compacted (15, the
    guardrail alert's phase sums, histograms, unit sums and quality-signal sums
    included), chart thresholds (1), cost per model (1), control arms (1), alert silences
    (1), experiment links (1): twenty-two queries whatever the calls."""
    ensure_default_alert_rules()
    make_experiment()
    make_calls([{"completed_at": recent_hour(hours)} for hours in range(0, 100, 2)])
    admin_client.get(URL)  # compacts the closed days
    with django_assert_num_queries(22):
        response = admin_client.get(URL)
    assert response.status_code == 200


def test_experiments_page_lists_every_experiment_with_its_report_link(admin_client):
    """The experiment reports entry lists experiments, arms and report links."""
    make_experiment()
    make_experiment("second-test", status="draft")
    content = admin_client.get("/admin/dashboard/experiments/").content.decode()
    assert "smart-vs-council" in content and "second-test" in content
    assert "council (50%), smart (50%)" in content
    assert content.count('class="dash-report-link"') == 2


def test_report_url_routes_to_the_statistics_report_view(admin_client, monkeypatch):
    """admin/dashboard/experiments/<key>/report/ calls dashboard.report_views with the key."""
    monkeypatch.setattr(
        dashboard_admin,
        "experiment_report_view",
        lambda request, key: HttpResponse(f"report of {key}"),
    )
    response = admin_client.get("/admin/dashboard/experiments/smart-vs-council/report/")
    assert response.content == b"report of smart-vs-council"


def test_report_url_is_staff_only(client):
    """The report route sits behind the admin login like the rest."""
    response = client.get("/admin/dashboard/experiments/smart-vs-council/report/")
    assert response.status_code == 302


def test_report_link_opens_the_statistics_report(admin_client):
    """The link on the dashboard leads to the experiment's report page (the report
    view, routed through this admin)."""
    experiment, control, smart = make_experiment()
    make_calls([{"experiment": experiment, "arm": smart}] * 3)
    dashboard = admin_client.get(URL).content.decode()
    link = "/admin/dashboard/experiments/smart-vs-council/report/"
    assert link in dashboard
    response = admin_client.get(link)
    assert response.status_code == 200
    assert experiment.name in response.content.decode()


def test_custom_date_range_shows_whole_utc_days(admin_client):
    """?start=&end= picks whole days (both included); an inverted range falls back with a
    message, never a 500."""
    make_calls([{"completed_at": recent_hour(0)}, {"completed_at": recent_hour(24 * 20)}])
    today = recent_hour(0).date()
    response = admin_client.get(URL + f"?start={today.isoformat()}&end={today.isoformat()}")
    assert response.context["data"]["overview"]["total_requests"] == 1
    assert response.context["selected_window"] == "custom"
    bad = admin_client.get(URL + "?start=2026-12-05&end=2026-12-01")
    assert bad.status_code == 200
    assert any("ends" in str(message) for message in bad.context["messages"])
    assert bad.context["selected_window"] == "7d"


def test_headline_savings_leave_the_control_arm_out(admin_client):
    """The control arm costs the baseline by design; the headline is the routed traffic's
    saving (90%), not the blend with the control (45%)."""
    experiment, control, smart = make_experiment()
    make_calls(
        [{"experiment": experiment, "arm": smart}] * 10
        + [{"experiment": experiment, "arm": control, "cost_usd": "0.0100"}] * 10
    )
    cards = admin_client.get(URL).context["cards"]
    savings = next(card for card in cards if card.get("key") == "savings")
    assert savings["value"] == "90.0%"


def test_high_cost_advice_does_not_ask_for_what_is_already_on(settings):
    """With ROUTER_COST_OPTIMIZATION on, the advice points elsewhere; off, it stays."""
    alert = {"metric": "cost_per_request_usd", "action": "Enable ROUTER_COST_OPTIMIZATION=true."}
    settings.ROUTER_COST_OPTIMIZATION = True
    assert "already on" in alert_advice(alert)
    settings.ROUTER_COST_OPTIMIZATION = False
    assert alert_advice(alert) == alert["action"]
