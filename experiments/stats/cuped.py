"""CUPED for ratio metrics at the unit level: each unit's pre-exposure metric as covariate.

Per arm and unit ``v_u = (x_u, y_u, px_u, py_u)``: the unit's denominator and numerator
after exposure (calls, cost) and the same before its first exposure within a look-back
(pre-period calls, pre-period cost). :class:`MomentSums` holds ``n``, ``sum v`` and
``sum v v^T`` over the units of an arm, all sums, so the database computes them.

Linearise the ratio ``r = mean(y) / mean(x)`` (Deng et al. 2018) as
``l_u = (y_u - r x_u) / mean(x)`` and the pre-period ratio (pooled over both arms, so it
is the same function in both) as ``m_u = (py_u - r_p px_u) / mean_pool(px)``. With the
per-arm sample covariance ``S`` of ``v`` and the gradients ``g = (-r/mean(x), 1/mean(x),
0, 0)``, ``h = (0, 0, -r_p/mean(px), 1/mean(px))``: ``Var(l) = g'Sg``, ``Cov(l,m) = g'Sh``,
``Var(m) = h'Sh``. The adjustment that minimises the variance of the difference is

    theta = sum_arms Cov(l,m)/n / sum_arms Var(m)/n,
    d_cuped = (r_t - r_c) - theta (mbar_t - mbar_c),   mbar = h' mean(v),
    Var(d_cuped) = sum_arms (Var(l) - 2 theta Cov(l,m) + theta^2 Var(m)) / n

(Deng et al. 2013, "Improving the Sensitivity of Online Controlled Experiments by
Utilizing Pre-Experiment Data"; GrowthBook's regression adjustment for ratio metrics).
The variance reduction is ``1 - Var(d_cuped) / Var(d)``. Units with no pre-exposure
calls get the covariate 0 (``px = py = 0``), as GrowthBook does: the covariate is fixed
before exposure, so any value keeps the estimate unbiased; they just gain nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.errors import StatsInputError
from experiments.stats.means import check_alpha
from experiments.stats.ratio import RatioSums
from experiments.stats.results import AsDict
from experiments.stats.sequential import DEFAULT_TUNING_N, SequentialResult, confidence_sequence

#: The order of the variables in :class:`MomentSums`.
VARIABLES = ("x", "y", "pre_x", "pre_y")


@dataclass(frozen=True)
class MomentSums(AsDict):
    """Sums over the units of one arm of ``v = (x, y, pre_x, pre_y)``: ``n``, ``sums``
    (4 values) and ``products`` (the 4x4 matrix of ``sum v_i v_j``, row-major)."""

    n: int
    sums: tuple[float, ...]
    products: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if self.n < 0 or len(self.sums) != 4 or len(self.products) != 4:
            raise StatsInputError("MomentSums needs n >= 0, 4 sums and a 4x4 matrix of products")

    @classmethod
    def from_units(cls, rows) -> MomentSums:
        """From per-unit ``(x, y, pre_x, pre_y)`` rows (tests and simulations)."""
        values = np.asarray(list(rows), dtype=float).reshape(-1, 4)
        return cls(
            int(values.shape[0]),
            tuple(values.sum(axis=0).tolist()),
            tuple(tuple(row) for row in (values.T @ values).tolist()),
        )

    def ratio_sums(self) -> RatioSums:
        """The post-exposure part, for the unadjusted tests."""
        return RatioSums(
            self.n,
            self.sums[0],
            self.sums[1],
            self.products[0][0],
            self.products[1][1],
            self.products[0][1],
        )


@dataclass(frozen=True)
class CupedComparison(AsDict):
    """A CUPED-adjusted ratio comparison; ``variance_reduction`` is a fraction."""

    theta: float
    difference: float
    standard_error: float
    unadjusted_standard_error: float
    variance_reduction: float
    p_value: float
    ci_low: float
    ci_high: float
    lift: float | None
    lift_standard_error: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    alpha: float
    sequential_absolute: SequentialResult | None = None
    sequential_relative: SequentialResult | None = None


def cuped_arrays(control, treatment):
    """Vectorised core. ``control`` / ``treatment``: ``(n, sums[..., 4], products[..., 4, 4])``.

    Returns ``(theta, d, var_d, var_unadjusted, lift, var_lift)`` (module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _cuped_core(control, treatment)


def _cuped_core(control, treatment):
    moments = []
    for n, sums, products in (control, treatment):
        n = np.asarray(n, dtype=float)
        sums = np.asarray(sums, dtype=float)
        products = np.asarray(products, dtype=float)
        mean = sums / n[..., None]
        cov = (products - n[..., None, None] * mean[..., :, None] * mean[..., None, :]) / (
            n[..., None, None] - 1
        )
        moments.append((n, sums, mean, cov))
    pre_x = moments[0][1][..., 2] + moments[1][1][..., 2]
    pre_y = moments[0][1][..., 3] + moments[1][1][..., 3]
    n_pool = moments[0][0] + moments[1][0]
    has_pre = pre_x > 0
    safe_pre_x = np.where(has_pre, pre_x, 1.0)
    ratio_pre = pre_y / safe_pre_x
    mean_pre_x = safe_pre_x / n_pool
    zero = np.zeros_like(ratio_pre)
    h = np.stack([zero, zero, -ratio_pre / mean_pre_x, 1 / mean_pre_x], axis=-1)
    parts = []
    for n, _sums, mean, cov in moments:
        ratio = mean[..., 1] / mean[..., 0]
        g = np.stack([-ratio / mean[..., 0], 1 / mean[..., 0], zero, zero], axis=-1)
        var_l = np.einsum("...i,...ij,...j->...", g, cov, g)
        cov_lm = np.einsum("...i,...ij,...j->...", g, cov, h)
        var_m = np.einsum("...i,...ij,...j->...", h, cov, h)
        m_bar = np.einsum("...i,...i->...", h, mean)
        parts.append((n, ratio, var_l, cov_lm, var_m, m_bar))
    (n_c, r_c, vl_c, clm_c, vm_c, m_c), (n_t, r_t, vl_t, clm_t, vm_t, m_t) = parts
    denominator = vm_c / n_c + vm_t / n_t
    theta = np.where(
        has_pre & (denominator > 0),
        (clm_c / n_c + clm_t / n_t) / np.where(denominator > 0, denominator, 1.0),
        0.0,
    )
    difference = (r_t - r_c) - theta * (m_t - m_c)
    arm_var_c = np.maximum(vl_c - 2 * theta * clm_c + theta**2 * vm_c, 0.0) / n_c
    arm_var_t = np.maximum(vl_t - 2 * theta * clm_t + theta**2 * vm_t, 0.0) / n_t
    var_d = arm_var_c + arm_var_t
    var_unadjusted = vl_c / n_c + vl_t / n_t
    m_pool = (n_c * m_c + n_t * m_t) / n_pool
    adjusted_c = r_c - theta * (m_c - m_pool)
    adjusted_t = r_t - theta * (m_t - m_pool)
    lift = adjusted_t / adjusted_c - 1
    var_lift = arm_var_t / adjusted_c**2 + adjusted_t**2 * arm_var_c / adjusted_c**4
    return theta, difference, var_d, var_unadjusted, lift, var_lift


def cuped_ratio_difference(
    control: MomentSums,
    treatment: MomentSums,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> CupedComparison:
    """CUPED-adjusted ``treatment - control`` of a ratio metric and its relative lift
    (normal intervals; confidence sequences with ``sequential``)."""
    alpha = check_alpha(alpha)
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, MomentSums):
            raise StatsInputError(f"{name} must be MomentSums, got {arm!r}")
        if arm.n < 2 or arm.sums[0] <= 0:
            raise StatsInputError(f"{name} needs n >= 2 units with calls, got n = {arm.n}")
    theta, d, var_d, var_u, lift, var_lift = (
        float(value)
        for value in cuped_arrays(
            (control.n, control.sums, control.products),
            (treatment.n, treatment.sums, treatment.products),
        )
    )
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    se = var_d**0.5
    degenerate = 1.0 if d == 0 else 0.0
    p_value = float(2 * scipy_stats.norm.sf(abs(d) / se)) if se > 0 else degenerate
    lift_ok = np.isfinite(lift) and np.isfinite(var_lift)
    lift_se = var_lift**0.5 if lift_ok else None
    seq_abs = seq_rel = None
    if sequential:
        n_total = int(control.n + treatment.n)
        seq_abs = confidence_sequence(
            estimate=d, variance=var_d, n_total=n_total, alpha=alpha, tuning_n=tuning_n
        )
        if lift_ok:
            seq_rel = confidence_sequence(
                estimate=lift, variance=var_lift, n_total=n_total, alpha=alpha, tuning_n=tuning_n
            )
    return CupedComparison(
        theta=theta,
        difference=d,
        standard_error=se,
        unadjusted_standard_error=var_u**0.5,
        variance_reduction=1 - var_d / var_u if var_u > 0 else 0.0,
        p_value=p_value,
        ci_low=d - z * se,
        ci_high=d + z * se,
        lift=lift if lift_ok else None,
        lift_standard_error=lift_se,
        lift_ci_low=lift - z * lift_se if lift_ok else None,
        lift_ci_high=lift + z * lift_se if lift_ok else None,
        alpha=alpha,
        sequential_absolute=seq_abs,
        sequential_relative=seq_rel,
    )
