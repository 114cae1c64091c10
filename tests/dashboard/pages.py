"""What the dashboard tests read out of a rendered admin page."""

from __future__ import annotations

import re

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)


def external_scripts(content: str) -> list[str]:
    """The page's script sources that do not come from this site (a CDN, any other host).

    Checking the sources, not the word "cdn", keeps a random CSRF token from failing a test."""
    return [
        src
        for src in SCRIPT_SRC.findall(content)
        if not src.startswith("/") or src.startswith("//")
    ]


#: The trace types of the vendored plotly.js bundle, ``dashboard/plotly-basic.min.js``
#: (npm ``plotly.js-basic-dist-min``: "Contains trace modules bar, pie and scatter").
#: A chart of any other type would not draw.
BUNDLE_TRACE_TYPES = frozenset({"bar", "pie", "scatter"})


def trace_types(charts: list[dict]) -> set[str]:
    """The trace types a page's charts JSON asks plotly.js for (plotly's default: scatter)."""
    return {trace.get("type", "scatter") for chart in charts for trace in chart["figure"]["data"]}
