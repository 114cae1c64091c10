"""CUPED for ratio metrics: adjustment, variance reduction, units without history."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.stats.cuped import MomentSums, cuped_ratio_difference
from experiments.stats.errors import StatsInputError
from experiments.stats.ratio import ratio_difference


def _arm(rng, n, *, lift=0.0, history=0.8):
    """Units with a persistent per-unit cost level seen before and after exposure."""
    level = rng.lognormal(0.0, 0.8, n)
    calls = 1 + rng.poisson(3, n)
    cost = rng.gamma(4.0 * calls, 0.001 * level * (1 + lift))
    pre_calls = np.where(rng.random(n) < history, 1 + rng.poisson(3, n), 0)
    pre_cost = rng.gamma(np.maximum(4.0 * pre_calls, 1e-9), 0.001 * level) * (pre_calls > 0)
    return np.column_stack([calls, cost, pre_calls, pre_cost])


def _numpy_cuped(control, treatment):
    """Independent reference on per-unit values (module docstring formulas)."""
    pooled = np.vstack([control, treatment])
    ratio_pre = pooled[:, 3].sum() / pooled[:, 2].sum()
    mean_pre_x = pooled[:, 2].mean()
    parts = []
    for arm in (control, treatment):
        r = arm[:, 1].sum() / arm[:, 0].sum()
        linear = (arm[:, 1] - r * arm[:, 0]) / arm[:, 0].mean()
        covariate = (arm[:, 3] - ratio_pre * arm[:, 2]) / mean_pre_x
        c = np.cov(linear, covariate, ddof=1)
        parts.append((arm.shape[0], r, c, covariate.mean()))
    (nc, rc, cc, mc), (nt, rt, ct, mt) = parts
    theta = (cc[0, 1] / nc + ct[0, 1] / nt) / (cc[1, 1] / nc + ct[1, 1] / nt)
    d = (rt - rc) - theta * (mt - mc)
    var = sum((c[0, 0] - 2 * theta * c[0, 1] + theta**2 * c[1, 1]) / n for n, _, c, _ in parts)
    return theta, d, var


def test_cuped_matches_an_independent_numpy_computation():
    """theta, the adjusted difference and its variance agree with numpy to 1e-6."""
    rng = np.random.default_rng(11)
    control, treatment = _arm(rng, 2000), _arm(rng, 2100, lift=0.05)
    result = cuped_ratio_difference(
        MomentSums.from_units(control), MomentSums.from_units(treatment)
    )
    theta, d, var = _numpy_cuped(control, treatment)
    assert result.theta == pytest.approx(theta, rel=1e-6)
    assert result.difference == pytest.approx(d, rel=1e-6)
    assert result.standard_error**2 == pytest.approx(var, rel=1e-6)


def test_a_correlated_pre_period_reduces_the_variance_by_a_third_or_more():
    """A persistent unit level seen before exposure cuts the variance >= 30%; the
    unadjusted standard error is the plain ratio test's."""
    rng = np.random.default_rng(2)
    control, treatment = _arm(rng, 3000), _arm(rng, 3000)
    sums = [MomentSums.from_units(arm) for arm in (control, treatment)]
    result = cuped_ratio_difference(*sums)
    plain = ratio_difference(sums[0].ratio_sums(), sums[1].ratio_sums())
    assert result.variance_reduction >= 0.30
    assert result.unadjusted_standard_error == pytest.approx(
        plain.absolute.standard_error, rel=1e-9
    )


def test_no_history_at_all_means_no_adjustment():
    """Without any pre-exposure calls theta is 0 and CUPED equals the plain test."""
    rng = np.random.default_rng(4)
    control, treatment = _arm(rng, 500, history=0.0), _arm(rng, 500, history=0.0)
    sums = [MomentSums.from_units(arm) for arm in (control, treatment)]
    result = cuped_ratio_difference(*sums)
    plain = ratio_difference(sums[0].ratio_sums(), sums[1].ratio_sums())
    assert result.theta == 0.0 and result.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert result.difference == pytest.approx(plain.absolute.difference, rel=1e-12)


def test_cuped_refuses_arms_without_units():
    """An arm with fewer than two units is a StatsInputError."""
    one = MomentSums.from_units([[1, 1.0, 0, 0]])
    two = MomentSums.from_units([[1, 1.0, 0, 0], [2, 3.0, 1, 1.0]])
    with pytest.raises(StatsInputError, match="control"):
        cuped_ratio_difference(one, two)
