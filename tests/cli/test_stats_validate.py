"""`routing stats-validate`: the simulation suite, small enough for every test run.

The bounds are wide enough for 300 simulations (binomial noise about +-1.3 points at 5%)
yet tight enough that a broken test fails them: the last test breaks Welch's variance
and checks that the same bounds catch it."""

from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from experiments.stats import simulation

SMALL = ["--sims", "300", "--units-per-arm", "700", "--days", "14"]


def validate(*args) -> dict:
    out = StringIO()
    call_command("routing", "stats-validate", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def problems(results: dict) -> list[str]:
    """Bounds for 300 simulations: each metric and the mean over metrics."""
    found = []
    checks = {
        "aa_fixed": (0.01, 0.11, 0.03, 0.075),
        "aa_peeking_naive": (0.10, 0.60, 0.15, 0.50),
        "aa_peeking_sequential": (0.0, 0.07, 0.0, 0.05),
        "coverage": (0.89, 0.995, 0.925, 0.975),
    }
    for key, (low, high, mean_low, mean_high) in checks.items():
        rates = results[key]
        for metric, rate in rates.items():
            if not low <= rate <= high:
                found.append(f"{key}.{metric}={rate}")
        mean = float(np.mean(list(rates.values())))
        if not mean_low <= mean <= mean_high:
            found.append(f"{key}.mean={mean}")
    return found


def test_json_has_exactly_the_documented_shape():
    """One object: sims, four maps of metric -> rate (fractions), and the clustered-unit
    suite."""
    results = validate(*SMALL)
    assert set(results) == {
        "sims",
        "aa_fixed",
        "aa_peeking_naive",
        "aa_peeking_sequential",
        "coverage",
        "clustered_units",
    }
    assert results["sims"] == 300
    metrics = {
        "cost_per_request",
        "quality",
        "confidence",
        "latency_ms",
        "escalation_rate",
        "error_rate",
    }
    for key in ("aa_fixed", "aa_peeking_naive", "aa_peeking_sequential", "coverage"):
        assert set(results[key]) == metrics
        assert all(0.0 <= rate <= 1.0 for rate in results[key].values())
    assert problems(results) == []
    assert unit_problems(results["clustered_units"]) == []


def unit_problems(results: dict) -> list[str]:
    """Bounds for 300 clustered simulations (the targets hold at 10,000, see
    benchmarks/bench_stats_validity.py)."""
    found = []
    bounds = {
        "aa_fixed": (0.01, 0.11),
        "coverage": (0.89, 0.995),
        "cuped_aa_fixed": (0.01, 0.11),
        "cuped_coverage": (0.89, 0.995),
        "cuped_variance_reduction": (0.30, 1.0),
        "reference_agreement": (0.0, 1e-6),
    }
    for key, (low, high) in bounds.items():
        for metric, rate in results[key].items():
            if not low <= rate <= high:
                found.append(f"{key}.{metric}={rate}")
    return found


def test_counting_calls_as_independent_is_caught_by_the_clustered_suite(monkeypatch):
    """The clustered suite catches an analysis that counts calls as if they were
    independent: dividing the variance by the number of calls instead of units fails the
    A/A bounds."""
    from experiments.stats import simulation_units

    real = simulation_units.ratio_arrays

    def call_level(n, sum_x, sum_y, sum_xx, sum_yy, sum_xy):
        ratio, per_unit = real(n, sum_x, sum_y, sum_xx, sum_yy, sum_xy)
        return ratio, per_unit * np.asarray(n, dtype=float) / sum_x

    monkeypatch.setattr(simulation_units, "ratio_arrays", call_level)
    results = validate(*SMALL)["clustered_units"]
    assert any(
        problem.startswith("aa_fixed.cost_per_request") for problem in unit_problems(results)
    )


def test_a_broken_variance_is_caught_by_the_same_bounds(monkeypatch):
    """Welch with the treatment variance forgotten (a classic bug) fails the bounds."""
    real = simulation.welch_arrays

    def broken(n_c, mean_c, var_c, n_t, mean_t, var_t):
        return real(n_c, mean_c, var_c, n_t, mean_t, np.zeros_like(np.asarray(var_t, dtype=float)))

    monkeypatch.setattr(simulation, "welch_arrays", broken)
    assert any(problem.startswith("aa_fixed") for problem in problems(validate(*SMALL)))


def test_human_output_lists_every_check():
    """Without --json a table per check with its target is printed."""
    out = StringIO()
    call_command("routing", "stats-validate", *SMALL, stdout=out)
    text = out.getvalue()
    for title in ("one look", "sequential p", "covers the true lift", "4%-6%", "94%-96%"):
        assert title in text


@pytest.mark.parametrize(
    "args, message",
    [(["--sims", "0"], "at least 1"), (["--sims", "10", "--units-per-arm", "5"], "units-per-arm")],
)
def test_bad_arguments_are_command_errors(args, message):
    """Nonsense sizes are refused with a message saying what to give."""
    with pytest.raises(CommandError, match=message):
        validate(*args)
