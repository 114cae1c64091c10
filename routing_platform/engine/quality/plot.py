"""The quality-vs-cost curve of each router, as a self-contained Plotly HTML page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from routing_platform.engine.quality.backtest import BacktestReport

MAX_POINTS = 400  # per curve; the curve is piecewise linear, so thinning loses nothing visible


def _thin(curve_x: np.ndarray, curve_y: np.ndarray) -> tuple[list[float], list[float]]:
    if len(curve_x) <= MAX_POINTS:
        return curve_x.tolist(), curve_y.tolist()
    index = np.unique(np.linspace(0, len(curve_x) - 1, MAX_POINTS).round().astype(int))
    return curve_x[index].tolist(), curve_y[index].tolist()


def curve_figure(report: BacktestReport):
    """A Plotly figure: quality (y) against cost relative to always-strong (x)."""
    figure = go.Figure()
    for result in report.results:
        cost, quality = _thin(result.curve.relative_cost * 100, result.curve.quality * 100)
        dash = "dot" if result.kind != "router" else None
        figure.add_trace(
            go.Scatter(
                x=cost,
                y=quality,
                mode="lines",
                name=f"{result.name} (APGR {result.metrics['apgr']:.3f})",
                line={"dash": dash},
            )
        )
        if result.operating_point is not None:
            point = result.operating_point
            strong_cost = 100 * (1 - point["savings"])
            figure.add_trace(
                go.Scatter(
                    x=[strong_cost],
                    y=[100 * point["quality"]],
                    mode="markers",
                    marker={"size": 10, "symbol": "diamond"},
                    name=f"{result.name} threshold ({100 * point['strong_share']:.0f}% strong)",
                )
            )
    first = report.results[0].curve
    for label, value in (
        ("strong model", first.strong_quality),
        ("weak model", first.weak_quality),
        ("95% of strong", 0.95 * first.strong_quality),
    ):
        figure.add_hline(
            y=100 * value,
            line_dash="dash",
            line_color="grey",
            annotation_text=label,
            annotation_position="bottom right",
        )
    figure.update_layout(
        title=(
            f"Quality vs cost ({report.mode} mode, {len(report.dataset)} rows): "
            f"{report.strong} vs {report.weak}"
        ),
        xaxis_title="cost, % of always using the strong model",
        yaxis_title="quality, % (mean score of the chosen model)",
        legend_title="router",
        template="plotly_white",
    )
    return figure


def write_curve_html(report: BacktestReport, path: str | Path) -> Path:
    """Write the curve page; plotly.js is embedded, so the file works offline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curve_figure(report).write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
