"""The validity suite for clustered units: experiments whose units send many calls.

Each simulated unit draws a heavy-tailed number of calls (``1 + Poisson(lambda_u)``,
``lambda_u ~ lognormal(0.7, 1.0)``: most units send a few calls, some send dozens) and a
per-unit random effect (its cost level, latency level, confidence, quality, escalation
and error propensity), and the metrics are ratios of per-unit sums (cost per call, ...).
Per simulation the arms' :class:`~experiments.stats.ratio.RatioSums` go through the very
kernels the reports use (``ratio_arrays`` + ``welch_arrays`` / ``delta_relative_arrays``
behind ``ratio_difference``; ``cuped_arrays`` behind ``cuped_ratio_difference``),
vectorised over simulations with numpy. It measures, per metric:

- ``aa_fixed``: the false-positive rate of one look at the end of an A/A experiment;
- ``coverage``: how often the 95% delta-method interval of the relative lift holds the
  true lift of an A/B experiment;
- ``cuped_variance_reduction`` / ``cuped_aa_fixed`` / ``cuped_coverage``: the same for
  cost per call with CUPED, the covariate being the unit's pre-exposure cost (90% of the
  units have history, from the same activity and cost level; the rest get 0, as in
  GrowthBook);
- ``reference_agreement``: the largest relative difference between ``ratio_difference``
  and an independent per-unit numpy delta method on one simulated experiment.

Targets (``UNIT_VALIDITY_CHECKS``): A/A within [0.04, 0.06], coverage within
[0.93, 0.97], CUPED variance reduction >= 30%, agreement <= 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats.cuped import cuped_arrays
from experiments.stats.errors import StatsInputError
from experiments.stats.means import delta_relative_arrays, welch_arrays
from experiments.stats.ratio import RatioSums, ratio_arrays, ratio_difference

DEFAULT_SEED = 20_261_203
DEFAULT_UNITS_PER_ARM = 2_000
DEFAULT_LIFT = 0.05
#: Simulations generated at once (bounds the memory: chunk x units x 4 floats per arm).
CHUNK = 500

UNIT_VALIDITY_CHECKS: tuple[tuple[str, str, str, Callable[[float], bool]], ...] = (
    (
        "aa_fixed",
        "Clustered units: A/A false-positive rate, one look",
        "4%-6%",
        lambda r: 0.04 <= r <= 0.06,
    ),
    (
        "coverage",
        "Clustered units: 95% CI covers the relative lift",
        "93%-97%",
        lambda r: 0.93 <= r <= 0.97,
    ),
    (
        "cuped_variance_reduction",
        "CUPED: variance reduction of the difference",
        ">= 30%",
        lambda r: r >= 0.30,
    ),
    (
        "cuped_aa_fixed",
        "CUPED: A/A false-positive rate, one look",
        "4%-6%",
        lambda r: 0.04 <= r <= 0.06,
    ),
    (
        "cuped_coverage",
        "CUPED: 95% CI covers the relative lift",
        "93%-97%",
        lambda r: 0.93 <= r <= 0.97,
    ),
    ("reference_agreement", "Delta method vs independent numpy", "<= 1e-6", lambda r: r <= 1e-6),
)


@dataclass(frozen=True)
class UnitMetric:
    """A ratio metric: ``sample(rng, calls, shape, lift) -> (x, y)`` per unit, with true
    ratio ``E[y] / E[x]`` multiplied by ``1 + lift``."""

    name: str
    sample: Callable


def _calls(rng, shape):
    return 1.0 + rng.poisson(rng.lognormal(0.7, 1.0, shape))


def _cost(rng, calls, shape, lift):
    level = rng.lognormal(0.0, 0.8, shape)
    return calls, rng.gamma(2.0 * calls, 0.001 * level * (1 + lift))


def _latency(rng, calls, shape, lift):
    level = rng.lognormal(np.log(800.0), 0.4, shape)
    return calls, rng.gamma(4.0 * calls, level / 4.0 * (1 + lift))


def _confidence(rng, calls, shape, lift):
    level = rng.beta(8.0, 2.5, shape) * (1 + lift)
    return calls, rng.normal(calls * level, 0.08 * np.sqrt(calls))


def _quality(rng, calls, shape, lift):
    """Quality is scored on about a third of the calls (x = scored calls, as a quality
    signal is)."""
    scored = rng.binomial(calls.astype(np.int64), 0.35).astype(float)
    level = rng.normal(75.0, 8.0, shape) * (1 + lift)
    return scored, rng.normal(scored * level, 10.0 * np.sqrt(scored))


def _rate(mean: float, concentration: float):
    def sample(rng, calls, shape, lift):
        target = mean * (1 + lift)
        propensity = rng.beta(target * concentration, (1 - target) * concentration, shape)
        return calls, rng.binomial(calls.astype(np.int64), propensity).astype(float)

    return sample


def unit_metrics() -> list[UnitMetric]:
    return [
        UnitMetric("cost_per_request", _cost),
        UnitMetric("latency_ms", _latency),
        UnitMetric("confidence", _confidence),
        UnitMetric("quality", _quality),
        UnitMetric("escalation_rate", _rate(0.15, 4.0)),
        UnitMetric("error_rate", _rate(0.05, 6.0)),
    ]


def _sums(x, y):
    """RatioSums arrays over the units axis (last), one per simulation."""
    return (
        np.full(x.shape[0], x.shape[1], dtype=float),
        x.sum(axis=1),
        y.sum(axis=1),
        (x * x).sum(axis=1),
        (y * y).sum(axis=1),
        (x * y).sum(axis=1),
    )


def _compare(control, treatment):
    """(p of the absolute difference, relative lift, its se) per simulation."""
    (r_c, v_c), (r_t, v_t) = ratio_arrays(*control), ratio_arrays(*treatment)
    n_c, n_t = control[0], treatment[0]
    _d, _se, _df, _t, p = welch_arrays(n_c, r_c, v_c, n_t, r_t, v_t)
    lift, lift_se, _z, _p = delta_relative_arrays(n_c, r_c, v_c, n_t, r_t, v_t)
    return p, lift, lift_se


def _metric_rates(metric: UnitMetric, rng, sims: int, units: int, alpha: float, lift: float):
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    false_positives = covered = 0
    for start in range(0, sims, CHUNK):
        shape = (min(CHUNK, sims - start), units)
        arms = [metric.sample(rng, _calls(rng, shape), shape, 0.0) for _ in range(2)]
        shifted = metric.sample(rng, _calls(rng, shape), shape, lift)
        control = _sums(*arms[0])
        p, _lift, _se = _compare(control, _sums(*arms[1]))
        false_positives += int(np.sum(p < alpha))
        _p, estimate, se = _compare(control, _sums(*shifted))
        covered += int(np.sum((estimate - z * se <= lift) & (lift <= estimate + z * se)))
    return false_positives / sims, covered / sims


def _cuped_arm(rng, shape, lift):
    """Per unit (x, y, pre_x, pre_y) of cost per call; the unit's cost level and its
    activity (mean calls) persist from the pre-period into the experiment."""
    level = rng.lognormal(0.0, 0.8, shape)
    activity = rng.lognormal(0.7, 1.0, shape)
    calls = 1.0 + rng.poisson(activity)
    cost = rng.gamma(2.0 * calls, 0.001 * level * (1 + lift))
    has_history = rng.random(shape) < 0.9
    pre_calls = np.where(has_history, 1.0 + rng.poisson(activity), 0.0)
    pre_cost = np.where(
        has_history, rng.gamma(np.maximum(2.0 * pre_calls, 1e-9), 0.001 * level), 0.0
    )
    values = np.stack([calls, cost, pre_calls, pre_cost], axis=-1)
    return (
        np.full(shape[0], shape[1], dtype=float),
        values.sum(axis=1),
        np.einsum("sui,suj->sij", values, values),
    )


def _cuped_rates(rng, sims: int, units: int, alpha: float, lift: float) -> dict:
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    false_positives = covered = 0
    reductions = []
    for start in range(0, sims, CHUNK):
        shape = (min(CHUNK, sims - start), units)
        control, twin = _cuped_arm(rng, shape, 0.0), _cuped_arm(rng, shape, 0.0)
        _theta, d, var_d, var_u, _lift, _var_lift = cuped_arrays(control, twin)
        p = 2 * scipy_stats.norm.sf(np.abs(d) / np.sqrt(var_d))
        false_positives += int(np.sum(p < alpha))
        reductions.append(1 - var_d / var_u)
        treatment = _cuped_arm(rng, shape, lift)
        _theta, _d, _var, _u, estimate, var_lift = cuped_arrays(control, treatment)
        se = np.sqrt(var_lift)
        covered += int(np.sum((estimate - z * se <= lift) & (lift <= estimate + z * se)))
    return {
        "cuped_variance_reduction": float(np.mean(np.concatenate(reductions))),
        "cuped_aa_fixed": false_positives / sims,
        "cuped_coverage": covered / sims,
    }


def reference_agreement(rng, units: int) -> float:
    """Largest relative difference between ``ratio_difference`` and a per-unit numpy
    delta method (linearised values, ``np.var``) on one simulated A/B experiment."""
    shape = (1, units)
    arms = [_cost(rng, _calls(rng, shape), shape, lift)[0:2] for lift in (0.0, 0.05)]
    result = ratio_difference(
        *(RatioSums.from_units(zip(x[0], y[0], strict=True)) for x, y in arms)
    )
    reference = []
    for x, y in arms:
        x, y = x[0], y[0]
        ratio = y.sum() / x.sum()
        reference.append((ratio, np.var((y - ratio * x) / x.mean(), ddof=1) / x.size))
    (r_c, v_c), (r_t, v_t) = reference
    pairs = (
        (result.absolute.difference, r_t - r_c),
        (result.absolute.standard_error, np.sqrt(v_c + v_t)),
        (result.relative.lift, r_t / r_c - 1),
        (result.relative.standard_error, np.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4)),
    )
    return float(max(abs(ours - theirs) / abs(theirs) for ours, theirs in pairs))


def run_unit_validation(
    *,
    sims: int = 10_000,
    units_per_arm: int = DEFAULT_UNITS_PER_ARM,
    alpha: float = 0.05,
    lift: float = DEFAULT_LIFT,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Run the clustered-unit suite; returns ``{"sims", "units_per_arm", "aa_fixed",
    "coverage", "cuped_variance_reduction", "cuped_aa_fixed", "cuped_coverage",
    "reference_agreement"}`` (per-metric dicts, fractions)."""
    if sims < 1:
        raise StatsInputError(f"sims must be >= 1, got {sims}")
    if units_per_arm < 2:
        raise StatsInputError(f"need at least 2 units per arm, got {units_per_arm}")
    metrics = unit_metrics()
    streams = np.random.SeedSequence(seed).spawn(len(metrics) + 2)
    results: dict = {"sims": sims, "units_per_arm": units_per_arm, "aa_fixed": {}, "coverage": {}}
    steps = len(metrics) + 1
    for index, (metric, stream) in enumerate(zip(metrics, streams, strict=False)):
        aa, coverage = _metric_rates(
            metric, np.random.default_rng(stream), sims, units_per_arm, alpha, lift
        )
        results["aa_fixed"][metric.name] = aa
        results["coverage"][metric.name] = coverage
        if progress is not None:
            progress(index + 1, steps, metric.name)
    cuped = _cuped_rates(np.random.default_rng(streams[-2]), sims, units_per_arm, alpha, lift)
    for key, value in cuped.items():
        results[key] = {"cost_per_request": value}
    results["reference_agreement"] = {
        "cost_per_request": reference_agreement(np.random.default_rng(streams[-1]), units_per_arm)
    }
    if progress is not None:
        progress(steps, steps, "cuped")
    return results
