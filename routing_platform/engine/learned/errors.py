"""The learned router's one error type."""

from __future__ import annotations


class LearnedRouterError(ValueError):
    """A learned-router artifact or input that cannot be used (the message says why)."""
