"""Charts of the dashboard: summaries in, Plotly figures out (pure: no Django, no queries).

Each function takes parts of ``router_dashboard.get_dashboard()`` (plain dicts and
lists) and returns a ``plotly.graph_objects.Figure``; :func:`build_charts` makes the whole
set. Every chart draws SVG (no WebGL traces), so it renders in any browser, headless
included, and plotly.js comes from the app's static files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import plotly.graph_objects as go

#: One colour per meaning, used across charts.
COLORS = {
    "actual": "#2563eb",
    "baseline": "#9ca3af",
    "savings": "#16a34a",
    "p50": "#0891b2",
    "p95": "#db2777",
    "escalation": "#ea580c",
    "threshold": "#dc2626",
    "bars": "#6366f1",
}
#: Complexity classes in their natural order (others follow, by size).
COMPLEXITY_ORDER = ("simple", "medium", "complex")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    description: str
    figure: go.Figure


@dataclass(frozen=True)
class TimeAxis:
    """The x axis of a time chart: the span to show and its bucket ("hour" or "day").

    An explicit span keeps one lone point from being drawn on an axis a millisecond wide."""

    start: datetime
    end: datetime
    unit: str = "day"

    @property
    def hover_format(self) -> str:
        return "%b %d, %H:%M UTC" if self.unit == "hour" else "%a %b %d, %Y"

    def layout(self) -> dict:
        return {
            "type": "date",
            "range": [self.start.isoformat(), self.end.isoformat()],
            "hoverformat": self.hover_format,
            "tickformatstops": [
                # Ticks under a day apart show the hour; a day or more apart, the date.
                {"dtickrange": [None, 82_800_000], "value": "%H:%M\n%b %d"},
                {"dtickrange": [82_800_000, None], "value": "%b %d"},
            ],
            "nticks": 8,
        }


def time_axis_of(
    timeseries: list[dict], *, unit: str, since: str | None = None, until: str | None = None
) -> TimeAxis | None:
    """The axis spanning the window (``since``/``until``, ISO) or, for all time, the data
    padded by half a bucket on each side; None without any point and any window."""
    bucket = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    times = [datetime.fromisoformat(point["bucket_start"]) for point in timeseries]
    start = datetime.fromisoformat(since) if since else (min(times) - bucket / 2 if times else None)
    end = datetime.fromisoformat(until) if until else (max(times) + bucket if times else None)
    if start is None or end is None:
        return None
    if times:
        end = max(end, max(times) + bucket / 2)
    return TimeAxis(start=start, end=end, unit=unit)


#: Axis style of every chart (what the "plotly_white" template gives, written out: the
#: template costs ~80 ms and 7 KB per figure to validate and embed). The page's script
#: recolours grid and text to the admin's light or dark theme.
#: Tick labels drawn as laid out: plotly.js's default for date and linear axes ("hide past
#: div") measures every tick label once per label drawn, which was 40% of the time the
#: dashboard took to draw its charts; our margins keep labels inside the chart anyway.
TICK_LABELS = {"ticklabeloverflow": "allow"}
_AXIS = {"gridcolor": "#e5e7eb", "zerolinecolor": "#d1d5db", "linecolor": "#d1d5db", **TICK_LABELS}
#: Slice and extra-trace colours, in order.
COLORWAY = ["#6366f1", "#f97316", "#10b981", "#ef4444", "#0ea5e9", "#a855f7", "#eab308"]
#: The note drawn in place of a time chart that has no point in its window.
NO_DATA = "No calls in this window"


def _layout(**extra) -> dict:
    layout = {
        "template": "none",
        # Transparent: the card behind the chart carries the admin theme's background.
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "colorway": COLORWAY,
        "xaxis": dict(_AXIS),
        "yaxis": dict(_AXIS),
        "height": 320,
        "margin": {"l": 56, "r": 16, "t": 16, "b": 48},
        "legend": {"orientation": "h", "y": -0.22, "x": 0},
        "font": {"size": 12},
        "hovermode": "x unified",
        # Full trace names in tooltips (Plotly cuts them at 15 characters by default).
        "hoverlabel": {"namelength": -1},
    }
    for axis in ("xaxis", "yaxis"):
        if axis in extra:
            extra[axis] = {**_AXIS, **extra[axis]}
    layout.update(extra)
    return layout


def _times(timeseries: list[dict]) -> list[str]:
    return [point["bucket_start"] for point in timeseries]


def _time_layout(axis: TimeAxis | None, **extra) -> dict:
    """A time chart's layout: date ticks over ``axis``, a "no data" note when empty."""
    layout = _layout(**extra)
    if axis is not None:
        layout["xaxis"] = {**layout["xaxis"], **axis.layout()}
    return layout


def _mark_empty(figure: go.Figure, timeseries: list) -> go.Figure:
    if not timeseries:
        figure.add_annotation(
            text=NO_DATA,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 14},
        )
    return figure


def _mode(timeseries: list) -> str:
    """Markers only where a line would join points far apart in few buckets."""
    return "lines+markers" if len(timeseries) <= 60 else "lines"


def savings_over_time(timeseries: list[dict], axis: TimeAxis | None = None) -> go.Figure:
    """Actual cost against the baseline (what the original premium council would have cost),
    per time bucket; the gap between the lines is the saving."""
    times = _times(timeseries)
    figure = go.Figure(
        layout=_time_layout(
            axis, yaxis={"title": {"text": "USD"}, "rangemode": "tozero", "tickprefix": "$"}
        )
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=[point["baseline_cost_usd"] for point in timeseries],
            name="Baseline (original council)",
            mode=_mode(timeseries),
            line={"color": COLORS["baseline"], "dash": "dash"},
            hovertemplate="$%{y:,.4f}<extra>Baseline</extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=[point["cost_usd"] for point in timeseries],
            name="Actual cost",
            mode=_mode(timeseries),
            line={"color": COLORS["actual"]},
            fill="tonexty",
            fillcolor="rgba(22, 163, 74, 0.12)",
            customdata=[point["cost_savings_percentage"] for point in timeseries],
            hovertemplate="$%{y:,.4f} (saved %{customdata:.1f}%)<extra>Actual cost</extra>",
        )
    )
    return _mark_empty(figure, timeseries)


def cost_by_model_over_time(
    series: dict[str, list[dict]], axis: TimeAxis | None = None
) -> go.Figure:
    """Cost per answering model per bucket, stacked: where the money goes, over time.
    ``series`` maps a model to ``[{"bucket_start", "cost_usd", "requests"}]``."""
    figure = go.Figure(
        layout=_time_layout(
            axis,
            yaxis={"title": {"text": "USD"}, "rangemode": "tozero", "tickprefix": "$"},
        )
    )
    for model, points in series.items():
        figure.add_trace(
            go.Scatter(
                x=_times(points),
                y=[point["cost_usd"] for point in points],
                name=model,
                mode=_mode(points),
                stackgroup="cost",
                customdata=[point["requests"] for point in points],
                hovertemplate="$%{y:,.4f} over %{customdata:,} requests<extra>%{fullData.name}</extra>",
            )
        )
    return _mark_empty(figure, list(series.values()))


def cost_per_request_by_arm(by_arm: dict[str, dict]) -> go.Figure:
    """Cost per request of each experiment arm (and of calls outside experiments)."""
    labels = list(by_arm)
    figure = go.Figure(
        layout=_layout(
            yaxis={"title": {"text": "USD per request"}, "tickprefix": "$"},
            xaxis={"automargin": True},
            hovermode="closest",
        )
    )
    figure.add_trace(
        go.Bar(
            x=labels,
            y=[by_arm[label]["cost_per_request_usd"] for label in labels],
            marker={"color": COLORS["bars"]},
            text=[f"${by_arm[label]['cost_per_request_usd']:.4f}" for label in labels],
            textposition="auto",
            customdata=[by_arm[label]["requests"] for label in labels],
            hovertemplate="%{x}<br>$%{y:,.5f} per request over %{customdata:,} requests<extra></extra>",
            name="Cost per request",
        )
    )
    return figure


def _alert_line(figure: go.Figure, axis: str, value: float, text: str) -> None:
    """An alert threshold as a dotted line at ``value`` of the ``axis`` ("x": a vertical
    line, "y": a horizontal one), labelled top left."""
    add_line = figure.add_vline if axis == "x" else figure.add_hline
    add_line(
        **{axis: value},
        line={"color": COLORS["threshold"], "dash": "dot"},
        annotation_text=text,
        annotation_position="top left",
    )


def confidence_distribution(
    buckets: list[dict], *, low_confidence_threshold: float | None = None
) -> go.Figure:
    """Histogram of confidence (0-1), with the low-confidence alert threshold marked."""
    figure = go.Figure(
        layout=_layout(
            xaxis={"title": {"text": "confidence"}, "range": [0, 1]},
            yaxis={"title": {"text": "requests"}},
            bargap=0.05,
            hovermode="closest",
        )
    )
    figure.add_trace(
        go.Bar(
            x=[(bucket["low"] + bucket["high"]) / 2 for bucket in buckets],
            y=[bucket["count"] for bucket in buckets],
            width=[bucket["high"] - bucket["low"] for bucket in buckets],
            marker={"color": COLORS["bars"]},
            name="Requests",
            hovertemplate="confidence %{x:.2f}: %{y:,} requests<extra></extra>",
        )
    )
    if low_confidence_threshold is not None:
        _alert_line(
            figure, "x", low_confidence_threshold, f"alert below {low_confidence_threshold:g}"
        )
    return figure


def escalation_rate_over_time(
    timeseries: list[dict],
    *,
    alert_threshold_pct: float | None = None,
    axis: TimeAxis | None = None,
) -> go.Figure:
    """Share of requests escalated to a stronger tier, per time bucket, in percent."""
    figure = go.Figure(
        layout=_time_layout(
            axis,
            yaxis={"title": {"text": "escalated"}, "rangemode": "tozero", "ticksuffix": "%"},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=_times(timeseries),
            y=[point["escalation_rate"] * 100 for point in timeseries],
            name="Escalation rate",
            mode=_mode(timeseries),
            line={"color": COLORS["escalation"]},
            hovertemplate="%{y:.1f}%<extra>Escalation rate</extra>",
        )
    )
    if alert_threshold_pct is not None:
        _alert_line(figure, "y", alert_threshold_pct, f"alert above {alert_threshold_pct:g}%")
    return _mark_empty(figure, timeseries)


def latency_over_time(timeseries: list[dict], axis: TimeAxis | None = None) -> go.Figure:
    """Latency p50 and p95 per time bucket (estimated from summed histograms)."""
    times = _times(timeseries)
    figure = go.Figure(
        layout=_time_layout(
            axis, yaxis={"title": {"text": "latency"}, "rangemode": "tozero", "ticksuffix": " ms"}
        )
    )
    for key, name in (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95")):
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[point[key] for point in timeseries],
                name=name,
                mode=_mode(timeseries),
                line={"color": COLORS[name]},
                connectgaps=False,
                hovertemplate="%{y:,.0f} ms<extra>" + name + "</extra>",
            )
        )
    return _mark_empty(figure, timeseries)


def complexity_mix(by_complexity: dict[str, dict]) -> go.Figure:
    """Share of requests per complexity class (simple / medium / complex)."""
    labels = sorted(
        by_complexity,
        key=lambda label: (
            COMPLEXITY_ORDER.index(label) if label in COMPLEXITY_ORDER else len(COMPLEXITY_ORDER),
            -by_complexity[label]["requests"],
        ),
    )
    figure = go.Figure(layout=_layout(hovermode="closest", legend={"orientation": "v"}))
    figure.add_trace(
        go.Pie(
            labels=labels,
            values=[by_complexity[label]["requests"] for label in labels],
            hole=0.45,
            sort=False,
            textinfo="label+percent",
            hovertemplate="%{label}: %{value:,} requests (%{percent})<extra></extra>",
            name="Complexity",
        )
    )
    return figure


#: A model label longer than this is a council of models joined by "+": one line per model.
LABEL_WRAP = 18
#: Width given per character of a 12 px tick label (an upper bound for the usual sans-serif
#: fonts), and per line of a multi-line one.
TICK_CHAR_PX = 7
TICK_LINE_PX = 16


def _tick_lines(label: str) -> list[str]:
    """``label`` as tick label lines: a council ("a+b+c") past ``LABEL_WRAP`` characters
    one model per line, the "+" kept at the line's end."""
    if len(label) <= LABEL_WRAP or "+" not in label:
        return [label]
    parts = label.split("+")
    return [part + "+" for part in parts[:-1]] + [parts[-1]]


def _labelled_bars_size(lines: list[list[str]]) -> tuple[int, int]:
    """Left margin and height of horizontal bars labelled ``lines``: wide enough for the
    longest line, tall enough for the tallest label on every bar. Given up front, plotly.js
    need not push the margin (its y-axis automargin would otherwise draw the chart twice);
    automargin stays on for a font wider than the estimate."""
    longest = max((len(line) for label in lines for line in label), default=0)
    tallest = max((len(label) for label in lines), default=1)
    return max(56, 12 + TICK_CHAR_PX * longest), max(320, 64 + TICK_LINE_PX * tallest * len(lines))


def model_mix(by_model: dict[str, dict], *, top: int = 12) -> go.Figure:
    """Requests per model (the largest ``top``; the rest summed as "other")."""
    labels = list(by_model)[:top]
    values = [by_model[label]["requests"] for label in labels]
    rest = sum(entry["requests"] for label, entry in list(by_model.items())[top:])
    if rest:
        labels.append("other")
        values.append(rest)
    lines = [_tick_lines(label) for label in labels]
    left, height = _labelled_bars_size(lines)
    layout = _layout(
        hovermode="closest",
        height=height,
        xaxis={"title": {"text": "requests"}},
        yaxis={"autorange": "reversed", "automargin": True, "ticklabeloverflow": "allow"},
    )
    layout["margin"] = {**layout["margin"], "l": left}
    figure = go.Figure(layout=layout)
    figure.add_trace(
        go.Bar(
            x=values,
            y=["<br>".join(label) for label in lines],
            orientation="h",
            marker={"color": COLORS["bars"]},
            name="Requests",
            customdata=labels,
            hovertemplate="%{customdata}: %{x:,} requests<extra></extra>",
        )
    )
    return figure


#: A one-day summary with a point in every series: what :func:`warm_up` draws.
_WARM_UP_POINT = {
    "bucket_start": "2026-01-01T00:00:00+00:00",
    "requests": 1,
    "cost_usd": 0.001,
    "baseline_cost_usd": 0.01,
    "cost_savings_percentage": 90.0,
    "escalation_rate": 0.1,
    "latency_p50_ms": 100.0,
    "latency_p95_ms": 200.0,
}
_WARM_UP_ENTRY = {"requests": 1, "cost_per_request_usd": 0.001}
_WARM_UP_DASHBOARD = {
    "timeseries_granularity": "day",
    "timeseries": [_WARM_UP_POINT],
    "by_arm": {"arm": _WARM_UP_ENTRY},
    "confidence_distribution": [{"low": 0.0, "high": 1.0, "count": 1}],
    "by_complexity": {"simple": _WARM_UP_ENTRY},
    "by_model": {"model": _WARM_UP_ENTRY},
}


def warm_up() -> int:
    """Build and serialise every chart once; the number built.

    plotly.py imports its graph-object modules and loads its table of validators on first
    use: without this, ~0.2 s of the first dashboard request after a server start (on the
    demo, against ~0.05 s for the next ones). ``config.asgi`` calls it at start-up, as
    the web server loads the application."""
    built = build_charts(
        _WARM_UP_DASHBOARD,
        low_confidence_threshold=0.5,
        escalation_alert_pct=50.0,
        cost_by_model={"model": [_WARM_UP_POINT]},
    )
    for chart in built:
        chart.figure.to_json()
    return len(built)


def build_charts(
    dashboard: dict,
    *,
    low_confidence_threshold: float | None = None,
    escalation_alert_pct: float | None = None,
    cost_by_model: dict[str, list[dict]] | None = None,
) -> list[Chart]:
    """Every chart of the dashboard page, in display order (the cost-per-model chart only
    when ``cost_by_model`` is given)."""
    timeseries = dashboard["timeseries"]
    unit = "hour" if dashboard.get("timeseries_granularity") == "hour" else "day"
    window = dashboard.get("window") or {}
    axis = time_axis_of(timeseries, unit=unit, since=window.get("since"), until=window.get("until"))
    per_model = []
    if cost_by_model is not None:
        per_model = [
            Chart(
                "cost-by-model",
                "Cost per model over time",
                f"What each answering model cost, stacked, per {unit}.",
                cost_by_model_over_time(cost_by_model, axis),
            )
        ]
    return [
        Chart(
            "savings",
            "Savings over time",
            f"Actual cost vs the original council's baseline, per {unit}.",
            savings_over_time(timeseries, axis),
        ),
        *per_model,
        Chart(
            "cost-by-arm",
            "Cost per request by arm",
            "Average cost of one request in each experiment arm.",
            cost_per_request_by_arm(dashboard["by_arm"]),
        ),
        Chart(
            "confidence",
            "Confidence distribution",
            "How sure the answering model was; low confidence triggers escalation.",
            confidence_distribution(
                dashboard["confidence_distribution"],
                low_confidence_threshold=low_confidence_threshold,
            ),
        ),
        Chart(
            "escalation",
            "Escalation rate",
            f"Share of requests escalated to a stronger tier, per {unit}.",
            escalation_rate_over_time(
                timeseries, alert_threshold_pct=escalation_alert_pct, axis=axis
            ),
        ),
        Chart(
            "latency",
            "Latency p50 / p95",
            f"Estimated from summed latency histograms, per {unit}.",
            latency_over_time(timeseries, axis),
        ),
        Chart(
            "complexity-mix",
            "Complexity mix",
            "Requests per complexity class.",
            complexity_mix(dashboard["by_complexity"]),
        ),
        Chart(
            "model-mix",
            "Model mix",
            "Requests per answering model.",
            model_mix(dashboard["by_model"]),
        ),
    ]
