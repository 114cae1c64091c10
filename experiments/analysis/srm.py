"""Sample-ratio mismatch, one rule for the report and the alerts.

Pearson's chi-square of the units per arm against the phase weights
(``experiments.stats.srm_test``), trusted only once every arm of positive weight expects
at least ``SRM_MIN_EXPECTED`` units; below that there is no verdict (no alert, no
``invalid`` report) rather than a verdict the approximation cannot back.
"""

from __future__ import annotations

from collections.abc import Sequence

from experiments import stats

#: Expected count per arm below which the chi-square SRM test is not trusted.
SRM_MIN_EXPECTED = 5.0


def too_few_expected(observed: Sequence[int], weights: Sequence[float]) -> bool:
    """Whether some arm of positive weight expects fewer than SRM_MIN_EXPECTED units."""
    total, weight_sum = sum(observed), sum(weights)
    if total <= 0 or weight_sum <= 0:
        return True
    expected = [total * weight / weight_sum for weight in weights if weight > 0]
    return not expected or min(expected) < SRM_MIN_EXPECTED


def srm_check(observed: Sequence[int], weights: Sequence[float], *, unit: str, keys) -> dict:
    """The report's SRM entry ``{unit, arm_keys, result, error}``; ``result`` is None
    (with the reason in ``error``) while the counts are too small to test."""
    entry = {"unit": unit, "arm_keys": list(keys), "result": None, "error": None}
    if len(observed) >= 2 and len(observed) == len(weights) and too_few_expected(observed, weights):
        entry["error"] = (
            f"too few {unit} to test yet: every arm must expect at least "
            f"{SRM_MIN_EXPECTED:g} (observed {list(observed)})"
        )
        return entry
    try:
        entry["result"] = stats.srm_test(list(observed), list(weights)).as_dict()
    except stats.StatsInputError as error:
        entry["error"] = str(error)
    return entry


def srm_p_value(observed: Sequence[int], weights: Sequence[float]) -> float | None:
    """The SRM p-value of units per arm against the configured weights; None when the
    test cannot be trusted yet (an expected count below SRM_MIN_EXPECTED, or bad input)."""
    if len(observed) < 2 or len(observed) != len(weights):
        return None
    entry = srm_check(observed, weights, unit="units", keys=range(len(observed)))
    return entry["result"]["p_value"] if entry["result"] else None
