"""The one error type of the statistics package."""

from __future__ import annotations


class StatsInputError(ValueError):
    """Bad input to a statistics function (negative counts, too few observations, ...).

    A ``ValueError`` subclass, so callers that already catch ``ValueError`` keep working;
    the message says which argument is wrong and what is expected.
    """
