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
