"""The pure chart module: dashboard summaries in, Plotly figures out (no database)."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs_version

import dashboard
from dashboard import charts

BUNDLE = Path(dashboard.__file__).parent / "static" / "dashboard" / "plotly-basic.min.js"


def _point(start: str, **fields) -> dict:
    point = {
        "bucket_start": start,
        "requests": 10,
        "cost_usd": 0.01,
        "baseline_cost_usd": 0.1,
        "cost_savings_percentage": 90.0,
        "escalation_rate": 0.2,
        "latency_p50_ms": 200.0,
        "latency_p95_ms": 900.0,
    }
    point.update(fields)
    return point


def _entry(requests: int, cost_per_request: float = 0.001) -> dict:
    return {"requests": requests, "cost_per_request_usd": cost_per_request}


DASHBOARD = {
    "timeseries_granularity": "day",
    "timeseries": [
        _point("2026-11-18T00:00:00+00:00"),
        _point(
            "2026-11-19T00:00:00+00:00", cost_usd=0.02, escalation_rate=0.4, latency_p95_ms=None
        ),
    ],
    "by_arm": {"exp/council": _entry(5, 0.01), "exp/smart": _entry(5, 0.001)},
    "confidence_distribution": [
        {"low": 0.0, "high": 0.5, "count": 3},
        {"low": 0.5, "high": 1.0, "count": 7},
    ],
    "by_complexity": {"complex": _entry(1), "simple": _entry(6), "medium": _entry(3)},
    "by_model": {f"model-{index}": _entry(20 - index) for index in range(15)},
}


def test_build_charts_returns_the_seven_dashboard_charts():
    """Savings, cost by arm, confidence, escalation, latency, complexity and model mix."""
    built = charts.build_charts(DASHBOARD, low_confidence_threshold=0.6, escalation_alert_pct=30)
    assert [chart.key for chart in built] == [
        "savings",
        "cost-by-arm",
        "confidence",
        "escalation",
        "latency",
        "complexity-mix",
        "model-mix",
    ]
    assert all(isinstance(chart.figure, go.Figure) for chart in built)
    assert "per day" in built[0].description


def test_savings_chart_draws_baseline_and_actual_cost():
    """Two lines: the original council's baseline and the actual cost, per bucket."""
    figure = charts.savings_over_time(DASHBOARD["timeseries"])
    names = [trace.name for trace in figure.data]
    assert names == ["Baseline (original council)", "Actual cost"]
    assert list(figure.data[1].y) == [0.01, 0.02]
    assert list(figure.data[0].y) == [0.1, 0.1]


def test_no_chart_uses_webgl():
    """Every trace is SVG-rendered (no *gl traces), so it draws in any headless browser."""
    for chart in charts.build_charts(DASHBOARD):
        for trace in chart.figure.data:
            assert not trace.type.endswith("gl"), (chart.key, trace.type)


def test_thresholds_are_marked_on_the_confidence_and_escalation_charts():
    """The alert thresholds appear as lines with their values."""
    confidence = charts.confidence_distribution(
        DASHBOARD["confidence_distribution"], low_confidence_threshold=0.6
    )
    assert confidence.layout.shapes[0].x0 == 0.6
    escalation = charts.escalation_rate_over_time(DASHBOARD["timeseries"], alert_threshold_pct=30)
    assert escalation.layout.shapes[0].y0 == 30
    assert list(escalation.data[0].y) == [20.0, 40.0]


def test_complexity_mix_keeps_natural_order_and_model_mix_groups_the_tail():
    """Complexity reads simple, medium, complex; models beyond the top 12 become 'other'."""
    mix = charts.complexity_mix(DASHBOARD["by_complexity"])
    assert list(mix.data[0].labels) == ["simple", "medium", "complex"]
    models = charts.model_mix(DASHBOARD["by_model"])
    assert len(models.data[0].y) == 13
    assert models.data[0].y[-1] == "other"
    assert models.data[0].x[-1] == sum(20 - index for index in range(12, 15))


def test_model_mix_puts_a_council_one_model_per_line_and_sizes_its_margin_up_front():
    """A council's joined name takes one line per model (the bars keep their width on a
    phone); the left margin holds the longest line, so plotly.js need not push it and draw
    the chart twice; the tooltip names the whole council."""
    council = "gpt-4.1+claude-sonnet-4-5+gemini-2.5-pro"
    figure = charts.model_mix({"gpt-4.1-mini": _entry(9), council: _entry(3)})
    assert list(figure.data[0].y) == [
        "gpt-4.1-mini",
        "gpt-4.1+<br>claude-sonnet-4-5+<br>gemini-2.5-pro",
    ]
    assert list(figure.data[0].customdata) == ["gpt-4.1-mini", council]
    assert "%{customdata}" in figure.data[0].hovertemplate
    assert figure.layout.margin.l == 12 + charts.TICK_CHAR_PX * len("claude-sonnet-4-5+")
    assert figure.layout.height == 320


def test_model_mix_grows_taller_when_its_labels_need_the_room():
    """Thirteen bars with a three-line label: every bar gets three lines of height."""
    many = {f"model-{index}": _entry(20 - index) for index in range(12)}
    many["a-long-model-name+another-long-one+a-third-one"] = _entry(1)
    figure = charts.model_mix(many, top=13)
    assert figure.layout.height == 64 + charts.TICK_LINE_PX * 3 * 13


def test_latency_chart_leaves_gaps_for_missing_percentiles():
    """A bucket without latency data is a gap (None), not a zero."""
    figure = charts.latency_over_time(DASHBOARD["timeseries"])
    assert list(figure.data[1].y) == [900.0, None]


def test_charts_accept_empty_summaries():
    """Empty inputs give empty figures, not errors."""
    empty = {
        "timeseries": [],
        "by_arm": {},
        "confidence_distribution": [],
        "by_complexity": {},
        "by_model": {},
    }
    assert len(charts.build_charts(empty)) == 7


def test_warm_up_builds_and_serialises_every_kind_of_chart():
    """The server's start-up warm-up draws the whole chart set (cost per model included),
    so the first dashboard does not load plotly.py's modules and validators itself."""
    assert charts.warm_up() == 8


def test_the_asgi_application_warms_the_charts_up_at_start_up():
    """The warm-up runs where the web server loads the application, not per request."""
    source = (Path(__file__).parents[2] / "config" / "asgi.py").read_text()
    assert "warm_up_charts()" in source


def test_vendored_plotly_js_is_the_basic_bundle_of_the_installed_plotly_version():
    """The admin's plotly.js is the basic partial bundle, at the plotly.js version the plotly
    package writes its figures for, with its MIT licence header and its licence file, and
    the compile hint that has Chromium compile it while it downloads."""
    header = BUNDLE.read_text(encoding="utf-8")[:300]
    version = get_plotlyjs_version()
    assert f"plotly.js (basic - minified) v{version}" in header, (
        f"{BUNDLE} is not plotly.js {version}'s basic bundle: run `make plotly-js`"
    )
    assert "Licensed under the MIT license" in header
    assert "MIT License" in BUNDLE.with_name("plotly-basic.LICENSE.txt").read_text()
    # V8's compile hint must be the first line, where `make plotly-js` puts it.
    assert header.splitlines()[0] == "//# allFunctionsCalledOnLoad", (
        f"{BUNDLE} lacks its compile hint: run `make plotly-js`"
    )


def test_every_axis_draws_its_tick_labels_without_measuring_each_against_the_div():
    """plotly.js's default tick label overflow check measures every label once per label:
    the charts turn it off (it was 40% of the dashboard's drawing time)."""
    built = charts.build_charts(DASHBOARD, low_confidence_threshold=0.6, escalation_alert_pct=30)
    cartesian = [chart for chart in built if chart.key not in {"complexity-mix", "model-mix"}]
    assert len(cartesian) == 5
    for chart in cartesian:
        layout = chart.figure.layout
        assert (layout.xaxis.ticklabeloverflow, layout.yaxis.ticklabeloverflow) == (
            "allow",
            "allow",
        )
