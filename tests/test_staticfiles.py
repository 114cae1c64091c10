"""The static files storage: hashed URLs once collected, plain URLs before (never a 500)."""

from __future__ import annotations

import json

from config.staticfiles import HashedCompressedStaticFilesStorage


def test_uncollected_files_keep_their_plain_url(tmp_path, settings):
    settings.STATIC_URL = "/static/"
    storage = HashedCompressedStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("dashboard/dashboard.css") == "/static/dashboard/dashboard.css"


def test_collected_files_get_their_hashed_url_even_under_debug(tmp_path, settings):
    """DEBUG would make Django's manifest storage print plain names; this one hashes."""
    settings.DEBUG = True
    (tmp_path / "staticfiles.json").write_text(
        json.dumps(
            {
                "version": "1.1",
                "paths": {"dashboard/plotly.min.js": "dashboard/plotly.min.0123456789ab.js"},
            }
        )
    )
    storage = HashedCompressedStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("dashboard/plotly.min.js") == "/static/dashboard/plotly.min.0123456789ab.js"
