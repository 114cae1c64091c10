"""Plotly figures of the experiment report, built from the report dict alone (pure).

``report_charts(report)`` returns ``[{"key", "title", "description", "figure"}]`` with
``figure`` a plain ``{"data", "layout"}`` dict, ready for ``json_script`` and
``Plotly.newPlot`` (drawn by ``dashboard/static/dashboard/dashboard.js``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import plotly.graph_objects as go

from dashboard.charts import TICK_LABELS
from dashboard.report_presentation import clip_relative

#: Metric key -> label on the forest plot.
METRIC_LABELS = {
    "cost_per_request": "Cost per request",
    "quality": "Score level",
    "confidence": "Confidence",
    "latency_ms": "Latency (mean)",
    "escalation_rate": "Escalation rate",
    "error_rate": "Error rate",
}
GOOD = "#15803d"
BAD = "#b91c1c"
NEUTRAL = "#64748b"


#: Forest plot point colour -> legend entry.
FOREST_LEGEND = {
    GOOD: "Significantly better",
    BAD: "Significantly worse",
    NEUTRAL: "Not significant",
}


def _layout(**extra) -> dict:
    layout = {
        "template": "none",
        # Transparent, with grid and text recoloured by the page for the admin's theme.
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"gridcolor": "#e5e7eb", "automargin": True, **TICK_LABELS},
        "yaxis": {"gridcolor": "#e5e7eb", "automargin": True, **TICK_LABELS},
        "height": 360,
        "margin": {"l": 24, "r": 24, "t": 16, "b": 48},
        "showlegend": False,
        "hoverlabel": {"namelength": -1},
    }
    for axis in ("xaxis", "yaxis"):
        if axis in extra:
            extra[axis] = {**layout[axis], **extra[axis]}
    layout.update(extra)
    return layout


def _to_dict(figure: go.Figure) -> dict:
    return figure.to_plotly_json()


def _forest_rows(report: dict) -> list[dict]:
    """One row per test with a relative lift: label, lift and clipped interval in %, colour."""
    rows = []
    treatments = sorted({test["treatment"] for test in report.get("tests", [])})
    for test in report.get("tests", []):
        relative = test.get("relative") or {}
        lift = relative.get("lift")
        interval = clip_relative(test.get("relative_ci_low"), test.get("relative_ci_high"))
        if lift is None or interval.low is None or interval.high is None:
            continue
        label = METRIC_LABELS.get(test["metric"], test["metric"])
        if len(treatments) > 1:
            label = f"{label} ({test['treatment']})"
        better = (test.get("direction") == "higher") == (lift > 0)
        colour = NEUTRAL
        if test.get("significant"):
            colour = GOOD if better else BAD
        p_value = test.get("p_value_adjusted") or test.get("p_value") or 0
        rows.append(
            {
                "label": label,
                "lift": lift * 100,
                "low": interval.low * 100,
                "high": interval.high * 100,
                "colour": colour,
                "text": (
                    f"{label}: {lift:+.1%} [{interval.low:+.1%}, {interval.high:+.1%}]"
                    f"{' (clipped at -100%)' if interval.clipped else ''}, p = {p_value:.3g}"
                ),
            }
        )
    return rows


def forest_plot(report: dict) -> dict:
    """Relative effect of each treatment on each metric with its interval (the one the
    decision uses: a confidence sequence when sequential testing is on), clipped at -100%;
    green when significantly better, red when significantly worse, grey otherwise, with a
    legend saying so."""
    figure = go.Figure()
    rows = _forest_rows(report)
    for colour, name in FOREST_LEGEND.items():
        group = [row for row in rows if row["colour"] == colour]
        figure.add_trace(
            go.Scatter(
                x=[row["lift"] for row in group],
                y=[row["label"] for row in group],
                mode="markers",
                name=name,
                marker={"color": colour, "size": 10},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [row["high"] - row["lift"] for row in group],
                    "arrayminus": [row["lift"] - row["low"] for row in group],
                    "color": colour,
                    "thickness": 1.5,
                },
                hovertext=[row["text"] for row in group],
                hoverinfo="text",
                # Keep every legend entry, so the colours are always explained.
                visible=True,
                showlegend=True,
            )
        )
    figure.add_vline(x=0, line_color="#94a3b8", line_dash="dash")
    figure.update_layout(
        **_layout(
            height=max(260, 44 * len(rows) + 120),
            showlegend=True,
            legend={"orientation": "h", "y": -0.25, "x": 0},
            margin={"l": 24, "r": 24, "t": 16, "b": 72},
            xaxis={
                "title": {"text": "relative difference vs control"},
                "ticksuffix": "%",
                "zeroline": False,
            },
            yaxis={
                "autorange": "reversed",
                "categoryorder": "array",
                "categoryarray": [row["label"] for row in rows],
            },
            hovermode="closest",
        )
    )
    return _to_dict(figure)


def cumulative_effect(report: dict) -> dict:
    """The primary metric's cumulative relative effect per day, with its interval band."""
    cumulative = report.get("cumulative") or {}
    figure = go.Figure()
    for arm_key, points in (cumulative.get("by_arm") or {}).items():
        days = [p["day"] for p in points if p.get("lift") is not None]
        lift = [p["lift"] * 100 for p in points if p.get("lift") is not None]
        low = [
            p["ci_low"] * 100
            for p in points
            if p.get("lift") is not None and p.get("ci_low") is not None
        ]
        high = [
            p["ci_high"] * 100
            for p in points
            if p.get("lift") is not None and p.get("ci_high") is not None
        ]
        if len(low) == len(days) == len(high) and days:
            figure.add_trace(
                go.Scatter(
                    x=days + days[::-1],
                    y=high + low[::-1],
                    fill="toself",
                    fillcolor="rgba(37, 99, 235, 0.15)",
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{arm_key} interval",
                )
            )
        figure.add_trace(
            go.Scatter(
                x=days,
                y=lift,
                mode="lines+markers",
                line={"color": "#2563eb"},
                name=arm_key,
                hovertemplate=f"{arm_key}<br>%{{x}}: %{{y:+.1f}}%<extra></extra>",
            )
        )
    figure.add_hline(y=0, line_color="#94a3b8", line_dash="dash")
    metric = METRIC_LABELS.get(cumulative.get("metric", ""), cumulative.get("metric", ""))
    figure.update_layout(
        **_layout(
            xaxis=_day_axis(
                point["day"]
                for points in (cumulative.get("by_arm") or {}).values()
                for point in points
            ),
            yaxis={"title": {"text": f"{metric} vs control"}, "ticksuffix": "%"},
        )
    )
    return _to_dict(figure)


def quality_over_time(report: dict) -> dict:
    """Mean quality signal (of the experiment's chosen source) per arm and day."""
    quality = report.get("quality") or {}
    figure = go.Figure()
    by_arm: dict[str, list[dict]] = {}
    for point in quality.get("by_day") or []:
        by_arm.setdefault(point["arm"], []).append(point)
    for arm_key, points in by_arm.items():
        figure.add_trace(
            go.Scatter(
                x=[p["day"] for p in points],
                y=[p["mean"] for p in points],
                customdata=[p["n"] for p in points],
                mode="lines+markers",
                name=arm_key,
                hovertemplate=f"{arm_key}<br>%{{x}}: %{{y:.3f}} (%{{customdata}} signals)<extra></extra>",
            )
        )
    figure.update_layout(
        **_layout(
            margin={"l": 64, "r": 24, "t": 16, "b": 48},
            showlegend=True,
            xaxis=_day_axis(point["day"] for point in quality.get("by_day") or []),
            yaxis={"title": f"{quality.get('signal', 'quality')} (0-1)", "range": [0, 1.02]},
        )
    )
    return _to_dict(figure)


def _day_axis(days: Iterable[str]) -> dict:
    """A date axis over ISO days, ticked by day; a lone day gets a day either side, one tick
    a day (Plotly would zoom to milliseconds around it, or repeat the day at half days)."""
    axis = {
        "title": {"text": "day (UTC)"},
        "type": "date",
        "tickformat": "%b %d",
        "hoverformat": "%a %b %d, %Y",
    }
    distinct = set(days)
    if len(distinct) != 1:
        return axis
    day = date.fromisoformat(distinct.pop())
    span = [(day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()]
    return {**axis, "range": span, "dtick": 86_400_000}


def ramp_history_chart(history: list[dict], *, until: str) -> dict:
    """The experiment's traffic share as a step line: each start, ramp and end, held until
    the next (``history`` from ``dashboard.selectors.ramp_history``; ``until`` ISO)."""
    times = [entry["at"] for entry in history]
    shares = [entry["percentage"] for entry in history]
    if history:
        times.append(until)
        shares.append(shares[-1])
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=times,
            y=shares,
            mode="lines+markers",
            line={"shape": "hv", "color": "#2563eb"},
            customdata=[[entry["action"], entry["username"]] for entry in history] + [["now", ""]],
            hovertemplate="%{y:g}% of units<br>%{customdata[0]} by %{customdata[1]}<extra></extra>",
            name="Traffic share",
        )
    )
    figure.update_layout(
        **_layout(
            height=280,
            xaxis={"type": "date", "hoverformat": "%b %d, %H:%M UTC"},
            yaxis={
                "title": {"text": "units in the experiment"},
                "ticksuffix": "%",
                "range": [0, 105],
            },
            hovermode="closest",
        )
    )
    return _to_dict(figure)


def report_charts(report: dict, *, ramp_history: list[dict] | None = None) -> list[dict]:
    """Every chart of the report page, in display order: the ramp history whenever there
    is one, the effects once there are tests."""
    ramp = []
    if ramp_history:
        ramp = [
            {
                "key": "ramp",
                "title": "Ramp history",
                "description": "Share of units in the experiment after each start, ramp and end.",
                "figure": ramp_history_chart(
                    ramp_history,
                    until=report.get("window", {}).get("end") or ramp_history[-1]["at"],
                ),
            }
        ]
    if not report.get("tests"):
        return ramp
    sequential = report.get("settings", {}).get("sequential_testing")
    kind = (
        "confidence sequences (safe to look every day)"
        if sequential
        else "95% confidence intervals"
    )
    return [
        {
            "key": "forest",
            "title": "Effects with intervals",
            "description": f"Relative difference vs the control, with {kind}.",
            "figure": forest_plot(report),
        },
        {
            "key": "cumulative",
            "title": "Cumulative effect over time",
            "description": "The primary metric's effect as the data arrived, day by day.",
            "figure": cumulative_effect(report),
        },
        *ramp,
    ] + _quality_charts(report)


def _quality_charts(report: dict) -> list[dict]:
    quality = report.get("quality") or {}
    if not quality.get("by_day"):
        return []
    return [
        {
            "key": "quality",
            "title": f"Quality by arm over time ({quality['signal']})",
            "description": "Daily mean of the experiment's quality signal, per arm.",
            "figure": quality_over_time(report),
        }
    ]
