"""Sample-ratio mismatch: do the arms hold the share of units the weights promised?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.results import AsDict

#: p below this blocks any winner (GrowthBook, Statsig and Microsoft ExP use 0.001).
SRM_P_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult(AsDict):
    observed: list[int]
    weights: list[float]
    expected: list[float]
    chi_square: float
    degrees_of_freedom: int
    p_value: float
    threshold: float
    mismatch: bool


def srm_test(
    observed: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_P_THRESHOLD
) -> SrmResult:
    """Pearson's chi-square goodness of fit of the unit counts to the configured weights.

    ``expected_i = N * w_i / sum(w)``, ``chi2 = sum (o_i - e_i)^2 / e_i`` with ``k - 1``
    degrees of freedom over the arms of positive weight; ``mismatch = p < threshold``.
    Units seen in an arm of weight 0 are a mismatch by definition (p = 0). Matches
    ``scipy.stats.chisquare``. With no units at all there is nothing to test (p = 1).
    """
    counts = [int(value) for value in observed]
    shares = [float(value) for value in weights]
    if len(counts) != len(shares) or len(counts) < 2:
        raise StatsInputError(
            f"need one weight per arm and at least 2 arms, got {len(counts)} counts "
            f"and {len(shares)} weights"
        )
    if any(count < 0 for count in counts) or any(share < 0 for share in shares):
        raise StatsInputError("counts and weights must not be negative")
    if sum(shares) <= 0:
        raise StatsInputError("at least one weight must be positive")
    total = sum(counts)
    expected = [total * share / sum(shares) for share in shares]
    live = [index for index, share in enumerate(shares) if share > 0]
    if total == 0:
        return SrmResult(counts, shares, expected, 0.0, len(live) - 1, 1.0, threshold, False)
    if any(counts[index] > 0 for index, share in enumerate(shares) if share == 0):
        return SrmResult(
            counts, shares, expected, float("1e308"), len(live) - 1, 0.0, threshold, True
        )
    if len(live) < 2:
        return SrmResult(counts, shares, expected, 0.0, 0, 1.0, threshold, False)
    result = scipy_stats.chisquare([counts[i] for i in live], [expected[i] for i in live])
    p_value = float(result.pvalue)
    return SrmResult(
        observed=counts,
        weights=shares,
        expected=expected,
        chi_square=float(result.statistic),
        degrees_of_freedom=len(live) - 1,
        p_value=p_value,
        threshold=threshold,
        mismatch=p_value < threshold,
    )
