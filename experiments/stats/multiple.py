"""Multiple comparisons: Holm-Bonferroni across a family of tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.stats.errors import StatsInputError


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sort ``p_(1) <= ... <= p_(m)``; ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``.
    Rejecting ``adj < alpha`` controls the family-wise error rate at alpha (Holm 1979).
    Matches ``statsmodels.stats.multitest.multipletests(method="holm")``.
    """
    values = list(p_values)
    for value in values:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or math.isnan(value)
            or not 0 <= value <= 1
        ):
            raise StatsInputError(f"p-values must be numbers within [0, 1], got {value!r}")
    m = len(values)
    order = sorted(range(m), key=lambda index: values[index])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return adjusted
