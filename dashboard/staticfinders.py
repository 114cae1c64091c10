"""Serve plotly.js from the installed plotly package instead of a copy in the repository."""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

_DIRECTORY = Path(plotly.__file__).resolve().parent / "package_data"
_NAME = "plotly.min.js"
_URL_PATH = f"dashboard/{_NAME}"


class PlotlyFinder(BaseFinder):
    """Finds exactly ``dashboard/plotly.min.js`` in plotly's own package data (works offline)."""

    storage = FileSystemStorage(location=str(_DIRECTORY))
    storage.prefix = "dashboard"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != _URL_PATH:
            return [] if find_all else None
        match = str(_DIRECTORY / _NAME)
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield _NAME, self.storage
