"""Every main admin screen in headless Chromium at 390 px, at 1440 px and in dark mode:
no page wider than the viewport, time charts with readable date ticks over 1, 7 and 90
days, report actions that change the experiment and write an audit row, and no console
errors. Screenshots go to ``var/screenshots/`` (named in docs/admin.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiments.models import AlertRule, AuditLogEntry, Experiment
from tests.dashboard.test_browser import CHROMIUM, _collect_console_errors, _login, chromium
from tests.dashboard.test_report_views import seed_report_experiment
from tests.metrics_factories import (
    ensure_default_alert_rules,
    make_calls,
    make_experiment,
    make_staff_user,
    recent_hour,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@dataclass(frozen=True)
class Screen:
    name: str
    width: int
    dark: bool = False


SCREENS = (Screen("phone", 390), Screen("desktop", 1440), Screen("dark", 1440, dark=True))
#: Tick labels a broken date axis prints (sub-second ticks around one lone point).
BROKEN_TICK = re.compile(r"\d\d:\d\d:\d\d|\.\d{3,}")


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


def _seed_traffic(experiment, control, smart) -> None:
    """90 days of calls: one pair a day for 90 days, plus hourly pairs over the last day."""
    hours = sorted({24 * day + 5 for day in range(90)} | set(range(0, 24)))
    specs = []
    for hours_ago in hours:
        specs.append(
            {
                "experiment": experiment,
                "arm": smart,
                "confidence": 0.35,
                "model": "gpt-4o-mini" if hours_ago % 2 else "claude-3-5-haiku-latest",
                "completed_at": recent_hour(hours_ago),
            }
        )
        specs.append(
            {
                "experiment": experiment,
                "arm": control,
                "strategy": "original_council",
                "tier": "premium",
                "model": "gpt-4o",
                "cost_usd": "0.0100",
                "latency_ms": 900.0,
                "completed_at": recent_hour(hours_ago),
            }
        )
    make_calls(specs)


def _seed_everything() -> str:
    """Traffic for the dashboard, a decided experiment for the report; its key."""
    ensure_default_alert_rules()
    AlertRule.objects.filter(key="low-confidence").update(enabled=True, min_requests=20)
    _seed_traffic(*make_experiment("traffic-demo", status=Experiment.Status.PAUSED))
    return seed_report_experiment().key


def _page_width(page) -> int:
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )


def _open(page, url: str, screen: Screen, name: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    if page.locator(".dash-plot").count():
        page.wait_for_function(
            "[...document.querySelectorAll('.dash-plot')].every("
            "el => el.getAttribute('data-rendered') === 'true')",
            timeout=30_000,
        )
    width = _page_width(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{screen.name}.png"), full_page=True)
    assert width <= screen.width, f"{name} is {width} px wide at a {screen.width} px viewport"


def _luminance(rgb: str) -> float:
    red, green, blue = (int(part) for part in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


@pytest.mark.parametrize("screen", SCREENS, ids=[screen.name for screen in SCREENS])
def test_every_main_page_fits_the_viewport_without_console_errors(
    live_server, chromium_path, screen
):
    """Dashboard, reports list, report, add-experiment form, recorded calls, alert rules and
    audit log are no wider than the viewport; in dark mode the charts draw light text on
    the dark page; nothing logs a console error. Screenshots of each page are saved."""
    key = _seed_everything()
    _, password = make_staff_user()
    pages = {
        "dashboard": "/admin/dashboard/dashboard/?window=7d",
        "reports": "/admin/dashboard/experiments/",
        "report": f"/admin/dashboard/experiments/{key}/report/",
        "experiment-add": "/admin/experiments/experiment/add/",
        "experiments": "/admin/experiments/experiment/",
        "calls": "/admin/experiments/routedcall/",
        "alert-rules": "/admin/experiments/alertrule/",
        "audit-log": "/admin/experiments/auditlogentry/",
    }
    with chromium(chromium_path) as browser:
        context = browser.new_context(
            viewport={"width": screen.width, "height": 900},
            color_scheme="dark" if screen.dark else "light",
        )
        page = context.new_page()
        errors: list[str] = []
        _collect_console_errors(page, errors)
        _login(page, live_server.url, password, "/admin/")
        page.wait_for_url("**/admin/")
        for name, path in pages.items():
            _open(page, live_server.url + path, screen, name)
            if name == "dashboard":
                theme = page.locator("#chart-savings").get_attribute("data-theme")
                assert theme == ("dark" if screen.dark else "light")
                tick_colour = page.evaluate(
                    "getComputedStyle(document.querySelector('#chart-savings .ytick text')).fill"
                )
                light_text = _luminance(tick_colour) > 128
                assert light_text is screen.dark, f"tick text {tick_colour} in {screen.name}"
                alert = page.locator('#alerts-panel [data-rule="low-confidence"]')
                assert alert.locator("button[value=acknowledge]").count() == 1
                if not screen.dark:
                    # The admin's theme toggle sets data-theme on <html>: charts follow.
                    page.evaluate("document.documentElement.dataset.theme = 'dark'")
                    page.wait_for_function(
                        "document.getElementById('chart-savings').dataset.theme === 'dark'"
                    )
                    page.evaluate("document.documentElement.dataset.theme = 'light'")
            if name == "calls":
                headers = page.locator("#result_list thead th").all_inner_texts()
                for column in ("MODEL", "COST", "CONFIDENCE", "LATENCY"):
                    assert any(column in header.upper() for header in headers), headers
                assert page.locator("#result_list tbody tr").count() > 0
        context.close()
    assert errors == []


@pytest.mark.parametrize(
    ("window", "expected", "min_points"),
    [
        ("24h", r"\d\d:\d\d", 20),
        ("7d", r"[A-Z][a-z]{2} \d\d", 7),
        ("90d", r"[A-Z][a-z]{2} \d\d", 80),
    ],
)
def test_time_chart_ticks_are_readable_dates_at_every_span(
    live_server, chromium_path, window, expected, min_points
):
    """The savings chart over one day shows hours (a point per hour), over 7 and 90 days
    dates (a point per day): at least three distinct ticks, none a sub-second label like
    "23:59:59.999"."""
    _seed_everything()
    _, password = make_staff_user()
    with chromium(chromium_path) as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        _collect_console_errors(page, errors)
        _login(
            page,
            live_server.url,
            password,
            f"/admin/dashboard/dashboard/%3Fwindow%3D{window}%26experiment%3Dtraffic-demo",
        )
        page.wait_for_selector('#chart-savings[data-rendered="true"]', timeout=30_000)
        ticks = [
            text.strip()
            for text in page.locator("#chart-savings .xtick text").all_text_contents()
            if text.strip()
        ]
        points = page.evaluate("document.getElementById('chart-savings').data[1].x.length")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#chart-savings").screenshot(
            path=str(SCREENSHOTS / f"savings-chart-{window}.png")
        )
    assert len(ticks) >= 3, ticks
    assert len(set(ticks)) == len(ticks), ticks
    assert not [tick for tick in ticks if BROKEN_TICK.search(tick)], ticks
    assert all(re.search(expected, tick) for tick in ticks), ticks
    assert points >= min_points, f"{points} points in {window}"
    assert errors == []


def test_report_actions_ramp_and_ship_change_the_experiment_and_are_audited(
    live_server, chromium_path
):
    """From the report, "Ramp to 50%" and then "Ship smart" each ask for confirmation, run,
    and come back with a message; the experiment is ramped, then concluded with smart
    serving, and the audit log has a row for each, under the staff user's name."""
    key = seed_report_experiment().key
    Experiment.objects.filter(key=key).update(traffic_percentage=25)
    _, password = make_staff_user()
    with chromium(chromium_path) as browser:
        page = browser.new_page(viewport={"width": 390, "height": 900})
        errors: list[str] = []
        _collect_console_errors(page, errors)
        _login(page, live_server.url, password, f"/admin/dashboard/experiments/{key}/report/")
        page.wait_for_selector("#report-actions")
        page.click('#report-actions [data-action="ramp"]')
        page.wait_for_selector("#report-confirm")
        assert "from 25% to 50%" in page.locator("#report-confirm").inner_text()
        page.click("#report-confirm-submit")
        page.wait_for_selector("#report-decision")
        ramp_message = page.locator(".messagelist").inner_text()
        page.click('#report-actions [data-action="ship"]')
        page.wait_for_selector("#report-confirm")
        page.click("#report-confirm-submit")
        page.wait_for_selector("#report-decision")
        ship_message = page.locator(".messagelist").inner_text()
        remaining = page.locator("#report-actions [data-action]").evaluate_all(
            "links => links.map(link => link.dataset.action)"
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "report-after-ship-phone.png"), full_page=True)
    assert "from 25% to 50%" in ramp_message
    assert "Shipped smart" in ship_message
    assert "ship" not in remaining and "ramp" not in remaining
    experiment = Experiment.objects.select_related("serving_arm").get(key=key)
    assert experiment.traffic_percentage == 50
    assert experiment.status == Experiment.Status.CONCLUDED
    assert experiment.serving_arm.key == "smart"
    audit = list(
        AuditLogEntry.objects.filter(experiment=experiment)
        .order_by("created_at", "id")
        .values_list("action", "username")
    )
    assert audit[-2:] == [("ramp", "staff"), ("conclude", "staff")]
    assert errors == []
