"""The clustered-unit validity suite: deterministic, shaped as documented, refuses nonsense."""

from __future__ import annotations

import pytest

from experiments.stats import StatsInputError
from experiments.stats.simulation_units import UNIT_VALIDITY_CHECKS, run_unit_validation


def test_fixed_seeds_reproduce_the_figures():
    """Two runs with the same seed give identical rates, one per metric and check."""
    first = run_unit_validation(sims=40, units_per_arm=200)
    second = run_unit_validation(sims=40, units_per_arm=200)
    assert first == second
    assert {key for key, *_ in UNIT_VALIDITY_CHECKS} <= set(first)
    assert len(first["aa_fixed"]) == 6
    assert first["reference_agreement"]["cost_per_request"] <= 1e-6


def test_bad_settings_raise():
    """No simulations, or fewer than two units per arm, are refused."""
    with pytest.raises(StatsInputError, match="sims"):
        run_unit_validation(sims=0)
    with pytest.raises(StatsInputError, match="2 units"):
        run_unit_validation(sims=5, units_per_arm=1)
