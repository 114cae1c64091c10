"""The experiment report page in a real browser (headless Chromium via Playwright)."""

from __future__ import annotations

import pytest

from tests.dashboard.test_browser import (
    ARTIFACTS,
    CHROMIUM,
    _collect_console_errors,
    _login,
    chromium,
)
from tests.dashboard.test_report_views import seed_report_experiment
from tests.metrics_factories import make_staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_page_draws_the_forest_plot_and_the_cumulative_effect(live_server):
    """A staff user opens an experiment's report: the decision is shown, both Plotly charts
    draw SVG (one forest point per metric), no console errors; a screenshot is saved."""
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium)")
    experiment = seed_report_experiment()
    _, password = make_staff_user()
    with chromium(CHROMIUM) as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        _collect_console_errors(page, errors)
        _login(
            page,
            live_server.url,
            password,
            f"/admin/dashboard/experiments/{experiment.key}/report/",
        )
        page.wait_for_selector("#report-decision")
        page.wait_for_function(
            """document.querySelectorAll('.dash-plot[data-rendered="true"]').length === 3""",
            timeout=30_000,
        )
        assert page.locator("#report-decision").get_attribute("data-decision") == "winner"
        assert page.locator("#chart-forest svg.main-svg").count() >= 1
        # Six metrics; the error rate has no relative lift (no control errors seeded).
        assert page.locator("#chart-forest .scatterlayer .point").count() == 5
        assert page.locator("#chart-cumulative .scatterlayer .trace").count() == 2
        # Quality by arm over time: the treatment's agreement signals (one arm, one line).
        assert page.locator("#chart-quality .scatterlayer .trace").count() == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "experiment-report.png"), full_page=True)
        assert errors == []
