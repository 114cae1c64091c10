"""The base of the frozen result dataclasses: one ``as_dict`` for all of them."""

from __future__ import annotations

from dataclasses import asdict


class AsDict:
    """Mixin for a dataclass whose ``as_dict`` is its fields as a (deep) plain dict."""

    def as_dict(self) -> dict:
        return asdict(self)
