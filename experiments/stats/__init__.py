"""Pure statistics for experiment reports: no Django, sufficient statistics in, results out.

Every function takes sufficient statistics (n, sum, sum of squares; n, successes; bucket
counts), documents its formula, uses ``scipy.stats`` for distributions, and raises
:class:`StatsInputError` (a ``ValueError``) for bad input.
"""

from experiments.stats.errors import StatsInputError
from experiments.stats.histograms import (
    CONFIDENCE_HIST_EDGES,
    CONFIDENCE_HIST_SIZE,
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
)

__all__ = [
    "CONFIDENCE_HIST_EDGES",
    "CONFIDENCE_HIST_SIZE",
    "LATENCY_HIST_EDGES_MS",
    "LATENCY_HIST_SIZE",
    "StatsInputError",
]
