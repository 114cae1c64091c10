"""The experiment report page (dashboard.report_views) and its charts (dashboard.report_charts)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dashboard.report_charts import cumulative_effect, quality_over_time, report_charts
from experiments import services
from experiments.models import Arm, ArmRollup, Experiment, Phase
from experiments.stats.histograms import LATENCY_HIST_SIZE
from tests.dashboard.pages import BUNDLE_TRACE_TYPES, external_scripts, trace_types
from tests.quality_factories import healthy_signals

pytestmark = pytest.mark.django_db
URL = "/admin/dashboard/experiments/{key}/report/"


@pytest.fixture
def experiment():
    return seed_report_experiment()


def seed_report_experiment() -> Experiment:
    """Two arms, seven days of calls: smart routing is 80% cheaper, same quality."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=7)
    experiment = Experiment.objects.create(
        key="smart-vs-council", name="Smart vs council", status="running", started_at=start
    )
    Arm.objects.create(
        experiment=experiment, key="council", strategy="original_council", is_control=True
    )
    Arm.objects.create(experiment=experiment, key="smart", strategy="smart_routing", position=1)
    phase = Phase.objects.create(
        experiment=experiment,
        number=1,
        hash_seed="s",
        arm_keys=["council", "smart"],
        weights=[0.5, 0.5],
    )
    Phase.objects.filter(pk=phase.pk).update(started_at=start)
    rng = np.random.default_rng(2)
    for day in range(7):
        for arm_key, cost in (("council", 0.01), ("smart", 0.002)):
            n = 800
            costs = rng.gamma(2.0, cost / 2, n)
            quality = rng.normal(75, 10, n)
            latency = rng.lognormal(np.log(900), 0.4, n)
            hist = np.bincount(
                np.minimum(
                    np.floor(20 * np.log10(latency) + 1e-9) + 1, LATENCY_HIST_SIZE - 1
                ).astype(int),
                minlength=LATENCY_HIST_SIZE,
            )
            ArmRollup.objects.create(
                bucket_start=start + timedelta(days=day, hours=3),
                experiment_key=experiment.key,
                arm_key=arm_key,
                status="success",
                n=n,
                escalated_n=100,
                cost_usd_sum=round(float(costs.sum()), 10),
                cost_usd_sumsq=float((costs**2).sum()),
                quality_n=n,
                quality_sum=float(quality.sum()),
                quality_sumsq=float((quality**2).sum()),
                confidence_n=n,
                confidence_sum=0.8 * n,
                confidence_sumsq=0.65 * n,
                latency_n=n,
                latency_ms_sum=float(latency.sum()),
                latency_ms_sumsq=float((latency**2).sum()),
                latency_hist=hist.tolist(),
            )
    healthy_signals(experiment, "smart")
    return experiment


def test_staff_see_decision_arms_guardrails_checklist_and_charts(admin_client, experiment):
    """The page shows the decision, one row per arm, SRM, guardrails, checklist, and the
    forest and cumulative charts as JSON for plotly.js served from static files."""
    response = admin_client.get(URL.format(key=experiment.key))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="report-decision"' in content and 'data-decision="winner"' in content
    assert content.count("<tr data-arm=") == 2
    for section in ("report-srm", "report-guardrails", "report-checklist", "report-tests"):
        assert f'id="{section}"' in content
    assert "dashboard/plotly-basic.min.js" in content and external_scripts(content) == []
    script = re.search(r'<script[^>]*id="dashboard-charts-data"[^>]*>(.*?)</script>', content, re.S)
    charts = json.loads(script.group(1))
    assert [chart["key"] for chart in charts] == ["forest", "cumulative", "quality"]
    assert trace_types(charts) <= BUNDLE_TRACE_TYPES
    for chart in charts:  # tick labels drawn without plotly's slow overflow check
        layout = chart["figure"]["layout"]
        assert (
            layout["xaxis"]["ticklabeloverflow"] == layout["yaxis"]["ticklabeloverflow"] == "allow"
        )
    assert 'id="report-quality"' in content and 'data-signal="agreement"' in content
    assert "Quality (agreement)" in content  # the guardrail names the signal it checks
    assert response.templates[0].name == "dashboard/experiment_report.html"


def test_json_format_downloads_the_versioned_export(admin_client, experiment):
    """?format=json returns the report as an attachment with its schema version."""
    response = admin_client.get(URL.format(key=experiment.key) + "?format=json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["schema_version"] == 2 and data["decision"]["status"] == "winner"


def test_unknown_experiment_is_404(admin_client, experiment):
    """A key that names no experiment answers 404, not 500."""
    assert admin_client.get(URL.format(key="no-such-experiment")).status_code == 404


def test_non_staff_are_sent_to_login(client, django_user_model, experiment):
    """Anonymous and non-staff users never see the report."""
    assert client.get(URL.format(key=experiment.key)).status_code == 302
    user = django_user_model.objects.create_user(username="viewer", password="x-unused-1")
    client.force_login(user)
    response = client.get(URL.format(key=experiment.key))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_view_called_directly_still_requires_staff(rf, experiment, django_user_model):
    """experiment_report_view guards itself, whoever routes to it."""
    from django.contrib.auth.models import AnonymousUser

    from dashboard.report_views import experiment_report_view

    request = rf.get("/")
    request.user = AnonymousUser()
    assert experiment_report_view(request, key=experiment.key).status_code == 302


def test_empty_experiment_page_renders(admin_client):
    """An experiment without calls renders, says no winner yet, and draws no broken chart."""
    experiment = Experiment.objects.create(key="fresh", name="Fresh", status="draft")
    Arm.objects.create(experiment=experiment, key="a", strategy="original_council", is_control=True)
    Arm.objects.create(experiment=experiment, key="b", strategy="smart_routing")
    response = admin_client.get(URL.format(key="fresh"))
    assert response.status_code == 200
    assert 'data-decision="no winner yet"' in response.content.decode()


def test_forest_plot_has_one_point_per_test_with_its_interval():
    """report_charts draws each computable test at its lift, with asymmetric error bars."""
    report = {
        "settings": {"sequential_testing": True},
        "tests": [
            {
                "metric": "cost_per_request",
                "treatment": "smart",
                "direction": "lower",
                "significant": True,
                "relative": {"lift": -0.8},
                "relative_ci_low": -0.85,
                "relative_ci_high": -0.7,
                "p_value": 0.001,
            },
            {
                "metric": "quality",
                "treatment": "smart",
                "direction": "higher",
                "significant": False,
                "relative": None,
                "relative_ci_low": None,
                "relative_ci_high": None,
            },
        ],
        "cumulative": {
            "metric": "cost_per_request",
            "by_arm": {
                "smart": [{"day": "2026-11-01", "lift": -0.5, "ci_low": -0.9, "ci_high": -0.1}]
            },
        },
    }
    charts = report_charts(report)
    better, worse, neutral = charts[0]["figure"]["data"]
    assert [better["name"], worse["name"], neutral["name"]] == [
        "Significantly better",
        "Significantly worse",
        "Not significant",
    ]
    assert charts[0]["figure"]["layout"]["showlegend"] is True
    assert better["x"] == pytest.approx([-80.0])
    assert better["error_x"]["arrayminus"] == pytest.approx([5.0])
    assert better["error_x"]["array"] == pytest.approx([10.0])
    assert better["marker"]["color"] == "#15803d"
    assert list(worse["x"]) == [] and list(neutral["x"]) == []
    band, line = charts[1]["figure"]["data"]
    assert line["y"] == pytest.approx([-50.0])
    assert band["y"] == pytest.approx([-10.0, -90.0])
    assert report_charts({"tests": []}) == []


def test_reports_list_shows_decision_and_primary_lift(admin_client, experiment):
    """The list says "winner: smart" and the cost lift with its interval."""
    response = admin_client.get("/admin/dashboard/experiments/")
    (row,) = response.context["experiments"]
    assert row["decision"] == "winner: smart"
    assert row["lift"].startswith("-79.8% cost (smart) [")
    assert "report-pill-winner" in response.content.decode()


def test_report_draws_the_ramp_history_from_the_audit_log(admin_client, experiment):
    """Each ramp is a step of the ramp-history chart, in order, ending where it stands."""
    Experiment.objects.filter(pk=experiment.pk).update(traffic_percentage=1)
    experiment.refresh_from_db()
    services.experiment_ramp(experiment=experiment, percentage=5)
    services.experiment_ramp(experiment=experiment, percentage=25)
    charts = admin_client.get(URL.format(key=experiment.key)).context["charts"]
    ramp = next(chart for chart in charts if chart["key"] == "ramp")
    (trace,) = ramp["figure"]["data"]
    assert list(trace["y"]) == [5.0, 25.0, 25.0]
    assert trace["line"]["shape"] == "hv"
    assert trace_types(charts) <= BUNDLE_TRACE_TYPES  # every chart of the page, ramp included


def test_cumulative_effect_of_one_day_spans_three_days_not_milliseconds():
    report = {
        "tests": [],
        "cumulative": {
            "metric": "cost_per_request",
            "by_arm": {"smart": [{"day": "2026-11-01", "lift": -0.5}]},
        },
    }
    figure = cumulative_effect(report)
    assert figure["layout"]["xaxis"]["range"] == ["2026-10-31", "2026-11-02"]
    assert figure["layout"]["xaxis"]["dtick"] == 86_400_000  # one tick a day, never half days


def test_quality_over_one_day_is_a_day_axis_not_milliseconds():
    """The quality chart's lone day reads "Nov 01" between two days, not 23:59:59.999."""
    report = {
        "quality": {
            "signal": "agreement",
            "by_day": [
                {"arm": "smart", "day": "2026-11-01", "mean": 0.8, "n": 12},
            ],
        }
    }
    xaxis = quality_over_time(report)["layout"]["xaxis"]
    assert (xaxis["type"], xaxis["tickformat"]) == ("date", "%b %d")
    assert xaxis["range"] == ["2026-10-31", "2026-11-02"] and xaxis["dtick"] == 86_400_000
