"""Plotly figures of the experiment report, built from the report dict alone (pure).

``report_charts(report)`` returns ``[{"key", "title", "description", "figure"}]`` with
``figure`` a plain ``{"data", "layout"}`` dict, ready for ``json_script`` and
``Plotly.newPlot`` (drawn by ``dashboard/static/dashboard/dashboard.js``).
"""

from __future__ import annotations

import plotly.graph_objects as go

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


def _layout(**extra) -> dict:
    layout = {
        "template": "plotly_white",
        "height": 360,
        "margin": {"l": 150, "r": 24, "t": 16, "b": 48},
        "showlegend": False,
    }
    layout.update(extra)
    return layout


def _to_dict(figure: go.Figure) -> dict:
    return figure.to_plotly_json()


def forest_plot(report: dict) -> dict:
    """Relative effect of each treatment on each metric with its interval (the one the
    decision uses: a confidence sequence when sequential testing is on); green when
    significantly better, red when significantly worse, grey otherwise."""
    figure = go.Figure()
    rows, lifts, lows, highs, colours, texts = [], [], [], [], [], []
    treatments = sorted({test["treatment"] for test in report.get("tests", [])})
    for test in report.get("tests", []):
        relative = test.get("relative") or {}
        lift = relative.get("lift")
        low, high = test.get("relative_ci_low"), test.get("relative_ci_high")
        if lift is None or low is None or high is None:
            continue
        label = METRIC_LABELS.get(test["metric"], test["metric"])
        if len(treatments) > 1:
            label = f"{label} ({test['treatment']})"
        better = (test.get("direction") == "higher") == (lift > 0)
        colour = NEUTRAL
        if test.get("significant"):
            colour = GOOD if better else BAD
        rows.append(label)
        lifts.append(lift * 100)
        lows.append(low * 100)
        highs.append(high * 100)
        colours.append(colour)
        texts.append(
            f"{label}: {lift:+.1%} [{low:+.1%}, {high:+.1%}], p = {test.get('p_value_adjusted') or test.get('p_value') or 0:.3g}"
        )
    figure.add_trace(
        go.Scatter(
            x=lifts,
            y=rows,
            mode="markers",
            marker={"color": colours, "size": 10},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [high - lift for lift, high in zip(lifts, highs, strict=True)],
                "arrayminus": [lift - low for lift, low in zip(lifts, lows, strict=True)],
                "color": "#334155",
                "thickness": 1.5,
            },
            hovertext=texts,
            hoverinfo="text",
        )
    )
    figure.add_vline(x=0, line_color="#94a3b8", line_dash="dash")
    figure.update_layout(
        **_layout(
            height=max(240, 44 * len(rows) + 80),
            xaxis={
                "title": "relative difference vs control (%)",
                "ticksuffix": "%",
                "zeroline": False,
            },
            yaxis={"autorange": "reversed"},
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
            margin={"l": 64, "r": 24, "t": 16, "b": 48},
            xaxis={"title": "day (UTC)"},
            yaxis={"title": f"{metric} vs control (%)", "ticksuffix": "%"},
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
            xaxis={"title": "day (UTC)"},
            yaxis={"title": f"{quality.get('signal', 'quality')} (0-1)", "range": [0, 1.02]},
        )
    )
    return _to_dict(figure)


def report_charts(report: dict) -> list[dict]:
    """Every chart of the report page, in display order (empty when there is nothing to draw)."""
    if not report.get("tests"):
        return []
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
