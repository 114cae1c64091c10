"""Holm-Bonferroni against statsmodels."""

from __future__ import annotations

import pytest
from statsmodels.stats.multitest import multipletests

from experiments.stats import StatsInputError, holm_bonferroni


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03, 0.005], [0.5], [0.2, 0.2, 0.01], [0.0, 1.0, 0.049, 0.051, 0.02], []],
)
def test_holm_matches_statsmodels(p_values):
    """Adjusted p-values equal multipletests(method='holm'), in the input order."""
    adjusted = holm_bonferroni(p_values)
    if not p_values:
        assert adjusted == []
        return
    assert adjusted == pytest.approx(list(multipletests(p_values, method="holm")[1]), abs=1e-12)


def test_bad_p_values_raise():
    """p-values outside [0, 1] or not numbers are refused."""
    for bad in ([1.2], [-0.1], [float("nan")], ["0.1"]):
        with pytest.raises(StatsInputError, match="within"):
            holm_bonferroni(bad)
