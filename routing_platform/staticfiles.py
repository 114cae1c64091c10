"""Static files storage: hashed names and gzip/brotli copies, for WhiteNoise to serve with
a year-long ``Cache-Control: immutable`` header (plotly.js alone is 4.8 MB raw, ~1 MB
compressed).

Hashed URLs are used under DEBUG too (Django's manifest storage otherwise falls back to
plain names there), so ``make demo`` gets the production caching. Not strict: a file
missing from the manifest (``collectstatic`` not run, as in the tests) keeps its plain
URL instead of failing the page.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedCompressedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def url(self, name, force=False):
        return super().url(name, force=True)
