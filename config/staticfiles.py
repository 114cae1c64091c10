"""Static files storage: hashed names and gzip copies, for WhiteNoise to serve with a
year-long ``Cache-Control: immutable`` header (plotly.js's basic bundle alone is 1.1 MB
raw, 0.37 MB gzipped).

Hashed URLs are used under DEBUG too (Django's manifest storage otherwise falls back to
plain names there), so ``make demo`` gets the production caching. A file missing from the
manifest (``collectstatic`` not run, as in the tests) keeps its plain URL instead of
failing the page.
"""

from __future__ import annotations

from django.contrib.staticfiles.storage import StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedCompressedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def url(self, name, force=False):
        path = name.split("?", 1)[0].split("#", 1)[0]
        if self.hash_key(self.clean_name(path)) not in self.hashed_files:
            return StaticFilesStorage.url(self, name)
        return super().url(name, force=True)
