"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright,
against a real server (pytest-django's live server thread), with seeded data."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from experiments.models import AlertRule
from tests.metrics_factories import (
    ensure_default_alert_rules,
    make_calls,
    make_experiment,
    make_staff_user,
    recent_hour,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHART_KEYS = (
    "savings",
    "cost-by-model",
    "cost-by-arm",
    "confidence",
    "escalation",
    "latency",
    "complexity-mix",
    "model-mix",
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@contextmanager
def chromium(path: Path):
    """Headless Chromium. Started after the test's database work: Playwright's sync API
    runs an event loop in this thread, and Django refuses ORM calls inside one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(path),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def _collect_console_errors(page, errors: list[str]) -> None:
    """Console errors and uncaught exceptions of the page. The admin's login page links no
    icon, so Chromium asks for /favicon.ico there and logs its 404; that one is not ours
    (the dashboard page declares an inline icon) and is left out."""

    def on_console(message) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if url.endswith("/favicon.ico"):
            return
        errors.append(f"{message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))


def _login(page, base_url: str, password: str, next_url: str) -> None:
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def _seed() -> None:
    """Two days of traffic in a running experiment; the smart arm's low confidence (0.45)
    pulls the average under the low-confidence rule's 0.6."""
    ensure_default_alert_rules()
    AlertRule.objects.filter(key="low-confidence").update(enabled=True, min_requests=20)
    experiment, control, smart = make_experiment("browser-demo")
    specs = []
    for hours_ago in range(0, 48, 3):
        for index in range(6):
            specs.append(
                {
                    "experiment": experiment,
                    "arm": smart,
                    "complexity": ("simple", "medium", "complex")[index % 3],
                    "tier": ("mini", "standard", "premium")[index % 3],
                    "model": ("gpt-4o-mini", "claude-sonnet", "gpt-4o")[index % 3],
                    "confidence": 0.45,
                    "escalated": index % 3 == 2,
                    "latency_ms": 200.0 + 40 * index,
                    "completed_at": recent_hour(hours_ago),
                }
            )
            specs.append(
                {
                    "experiment": experiment,
                    "arm": control,
                    "strategy": "original_council",
                    "complexity": ("simple", "medium", "complex")[index % 3],
                    "tier": "premium",
                    "model": "gpt-4o",
                    "cost_usd": "0.0100",
                    "confidence": 0.62,
                    "latency_ms": 900.0 + 50 * index,
                    "completed_at": recent_hour(hours_ago),
                }
            )
    make_calls(specs)


def test_dashboard_renders_every_chart_and_the_seeded_alert(live_server, chromium_path):
    """A staff user logs in, opens the dashboard with seeded data: every chart draws SVG,
    the alerts panel shows the low-confidence alert, the console stays free of errors,
    and a screenshot is saved for review."""
    _seed()
    _, password = make_staff_user()
    with chromium(chromium_path) as browser:
        _check_dashboard(browser, live_server.url, password)


def _check_dashboard(browser, base_url: str, password: str) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    console_errors: list[str] = []
    _collect_console_errors(page, console_errors)

    _login(page, base_url, password, "/admin/dashboard/dashboard/%3Fwindow%3D7d")
    page.wait_for_url("**/admin/dashboard/dashboard/**")
    page.wait_for_selector('[data-rendered="true"]', timeout=30_000)
    page.wait_for_function(
        f"document.querySelectorAll('.dash-plot[data-rendered=\"true\"]').length === {len(CHART_KEYS)}",
        timeout=30_000,
    )

    for key in CHART_KEYS:
        svg_nodes = page.locator(f"#chart-{key} svg.main-svg").count()
        assert svg_nodes >= 1, f"chart {key} drew no SVG"
        assert page.locator(f"#chart-{key} .plot-container").count() == 1
    assert page.locator("#chart-savings .scatterlayer .trace").count() == 2
    assert page.locator("#chart-complexity-mix .pielayer .slice").count() == 3
    # The model mix's left margin, sized on the server, holds its labels: plotly.js kept it
    # (an automargin push would have drawn the chart a second time).
    margins = page.evaluate(
        "(() => { const gd = document.getElementById('chart-model-mix');"
        " return [gd._fullLayout._size.l, gd.layout.margin.l]; })()"
    )
    assert margins[0] == margins[1], margins

    alert = page.locator('#alerts-panel [data-rule="low-confidence"]')
    assert alert.count() == 1
    assert "Average confidence is 0.535" in alert.inner_text()
    assert "Action:" in alert.inner_text()
    assert page.locator(".dash-report-link").count() == 1

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert console_errors == []


def test_empty_dashboard_shows_the_empty_state_in_the_browser(live_server, chromium_path):
    """With no calls recorded, the page explains how to get data instead of drawing charts,
    and loads without console errors."""
    _, password = make_staff_user()
    with chromium(chromium_path) as browser:
        page = browser.new_page()
        console_errors: list[str] = []
        _collect_console_errors(page, console_errors)
        _login(page, live_server.url, password, "/admin/dashboard/dashboard/")
        page.wait_for_selector("#dashboard-empty")
        _check_empty(page, console_errors)


def _check_empty(page, console_errors: list[str]) -> None:
    assert "No routed calls yet" in page.locator("#dashboard-empty").inner_text()
    assert page.locator(".dash-plot").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-empty.png"), full_page=True)
    assert console_errors == []
