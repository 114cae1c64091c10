"""The validity simulation: same seeds, same figures; bad settings refused."""

from __future__ import annotations

import pytest

from experiments.stats import StatsInputError
from experiments.stats.simulation import run_validation


def test_fixed_seeds_reproduce_the_figures():
    """Two runs with the same seed give identical rates."""
    first = run_validation(sims=60, units_per_arm=280, days=7)
    second = run_validation(sims=60, units_per_arm=280, days=7)
    assert first == second
    assert set(first) == {
        "sims",
        "aa_fixed",
        "aa_peeking_naive",
        "aa_peeking_sequential",
        "coverage",
    }


def test_bad_settings_raise():
    """No simulations, or fewer units than days, are refused."""
    with pytest.raises(StatsInputError, match="sims"):
        run_validation(sims=0)
    with pytest.raises(StatsInputError, match="one unit per arm per day"):
        run_validation(sims=10, units_per_arm=5, days=28)
