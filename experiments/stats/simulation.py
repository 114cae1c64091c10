"""The validity suite: simulated A/A and A/B experiments with fixed seeds.

Each simulation draws per-unit values for two arms from distributions shaped like the
platform's metrics, sums them per day into sufficient statistics, and runs the very
kernels the reports use (``welch_arrays``, ``two_proportion_z_arrays``,
``delta_relative_arrays``, ``relative_rate_arrays``, ``sequential.p_value_arrays``), all
vectorised over simulations with numpy. It measures:

- ``aa_fixed``: the false-positive rate of one test at the end of an A/A experiment;
- ``aa_peeking_naive``: the rate at which a fixed-horizon test is "significant" at any
  of ``days`` daily looks (what peeking does to an ordinary p-value);
- ``aa_peeking_sequential``: the same with always-valid p-values;
- ``coverage``: how often the 95% delta-method interval for the relative lift holds the
  true lift of an A/B experiment.

All rates are fractions. Targets (checked by ``routing stats-validate``, figures in BENCHMARKS.md): aa_fixed within [0.04, 0.06] at
10,000 simulations, sequential peeking <= 0.05 (naive >= 0.20), coverage within
[0.94, 0.96] at >= 2,000 units per arm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments.stats import sequential as seq
from experiments.stats.errors import StatsInputError
from experiments.stats.means import delta_relative_arrays, welch_arrays
from experiments.stats.proportions import relative_rate_arrays, two_proportion_z_arrays

DEFAULT_SEED = 20_261_126
DEFAULT_UNITS_PER_ARM = 2_000
DEFAULT_DAYS = 28
DEFAULT_LIFT = 0.05

#: The suite's checks against TARGETS.md: (result key, title, target text, passes(rate)).
#: Shared by ``routing stats-validate`` and the stats-validity benchmark.
VALIDITY_CHECKS: tuple[tuple[str, str, str, Callable[[float], bool]], ...] = (
    ("aa_fixed", "A/A false-positive rate, one look", "4%-6%", lambda r: 0.04 <= r <= 0.06),
    (
        "aa_peeking_naive",
        "A/A FPR, 28 daily looks, fixed-horizon p (harness check)",
        ">= 20%",
        lambda r: r >= 0.20,
    ),
    (
        "aa_peeking_sequential",
        "A/A FPR, 28 daily looks, sequential p",
        "<= 5%",
        lambda r: r <= 0.05,
    ),
    (
        "coverage",
        "95% CI for relative lift covers the true lift",
        "94%-96%",
        lambda r: 0.94 <= r <= 0.96,
    ),
)


@dataclass(frozen=True)
class MetricModel:
    """A metric's per-unit distribution; ``sample(rng, shape, lift)`` draws values whose
    true mean is ``mean * (1 + lift)``."""

    name: str
    family: str  # "mean" or "proportion"
    mean: float
    sample: Callable[[np.random.Generator, tuple[int, ...], float], np.ndarray]


def _lognormal(median: float, sigma: float):
    mu = np.log(median)

    def sample(rng, shape, lift):
        return rng.lognormal(mu + np.log1p(lift), sigma, shape)

    return float(np.exp(mu + sigma**2 / 2)), sample


def _normal(mean: float, sd: float):
    def sample(rng, shape, lift):
        return rng.normal(mean * (1 + lift), sd, shape)

    return mean, sample


def _beta(a: float, b: float):
    mean = a / (a + b)

    def sample(rng, shape, lift):
        target = mean * (1 + lift)
        return rng.beta(target * b / (1 - target), b, shape)

    return mean, sample


def _bernoulli(rate: float):
    def sample(rng, shape, lift):
        return (rng.random(shape) < rate * (1 + lift)).astype(float)

    return rate, sample


def default_metrics() -> list[MetricModel]:
    """Skewed cost (lognormal), quality scores (normal, sd 10 around 75), confidence
    (beta, mean 0.76), heavy-tailed latency (lognormal), escalation (15%) and error (5%)."""
    specs = {
        "cost_per_request": ("mean", _lognormal(0.002, 1.0)),
        "quality": ("mean", _normal(75.0, 10.0)),
        "confidence": ("mean", _beta(8.0, 2.5)),
        "latency_ms": ("mean", _lognormal(800.0, 0.6)),
        "escalation_rate": ("proportion", _bernoulli(0.15)),
        "error_rate": ("proportion", _bernoulli(0.05)),
    }
    return [
        MetricModel(name=name, family=family, mean=mean, sample=sample)
        for name, (family, (mean, sample)) in specs.items()
    ]


def _daily_sums(model: MetricModel, rng, sims: int, per_day: int, days: int, lift: float):
    """Cumulative (n, sum, sum of squares) per simulation after each day: arrays (days, sims)."""
    sums = np.empty((days, sims))
    squares = np.empty((days, sims))
    running_sum = np.zeros(sims)
    running_squares = np.zeros(sims)
    for day in range(days):
        values = model.sample(rng, (sims, per_day), lift)
        running_sum += values.sum(axis=1)
        running_squares += (values * values).sum(axis=1)
        sums[day] = running_sum
        squares[day] = running_squares
    n = (np.arange(1, days + 1) * per_day)[:, None] * np.ones((1, sims))
    return n, sums, squares


def _p_values(model: MetricModel, control, treatment, alpha: float, tuning_n: float):
    """Fixed-horizon and always-valid p-values of ``treatment - control`` per look."""
    (n_c, s_c, q_c), (n_t, s_t, q_t) = control, treatment
    mean_c, mean_t = s_c / n_c, s_t / n_t
    if model.family == "proportion":
        _difference, _z, fixed = two_proportion_z_arrays(s_c, n_c, s_t, n_t)
        variance = mean_c * (1 - mean_c) / n_c + mean_t * (1 - mean_t) / n_t
    else:
        var_c = np.maximum((q_c - s_c**2 / n_c) / (n_c - 1), 0)
        var_t = np.maximum((q_t - s_t**2 / n_t) / (n_t - 1), 0)
        _difference, se, _df, _t, fixed = welch_arrays(n_c, mean_c, var_c, n_t, mean_t, var_t)
        variance = se**2
    always_valid = seq.p_value_arrays(mean_t - mean_c, variance, n_c + n_t, alpha, tuning_n)
    return fixed, np.minimum.accumulate(always_valid, axis=0)


def _relative_interval_covers(model: MetricModel, control, treatment, alpha: float, lift: float):
    (n_c, s_c, q_c), (n_t, s_t, q_t) = control, treatment
    if model.family == "proportion":
        estimate, se = relative_rate_arrays(s_c, n_c, s_t, n_t)
    else:
        mean_c, mean_t = s_c / n_c, s_t / n_t
        var_c = np.maximum((q_c - s_c**2 / n_c) / (n_c - 1), 0)
        var_t = np.maximum((q_t - s_t**2 / n_t) / (n_t - 1), 0)
        estimate, se, _z, _p = delta_relative_arrays(n_c, mean_c, var_c, n_t, mean_t, var_t)
    half = float(scipy_stats.norm.ppf(1 - alpha / 2)) * se
    return (estimate - half <= lift) & (lift <= estimate + half)


def run_validation(
    *,
    sims: int = 10_000,
    units_per_arm: int = DEFAULT_UNITS_PER_ARM,
    days: int = DEFAULT_DAYS,
    alpha: float = 0.05,
    lift: float = DEFAULT_LIFT,
    seed: int = DEFAULT_SEED,
    tuning_n: float = seq.DEFAULT_TUNING_N,
    metrics: list[MetricModel] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Run the suite; returns ``{"sims", "aa_fixed", "aa_peeking_naive",
    "aa_peeking_sequential", "coverage"}`` with one rate (a fraction) per metric.

    Each arm gets ``ceil(units_per_arm / days)`` units a day for ``days`` days;
    ``progress(done, total, metric)`` is called after each metric."""
    if sims < 1:
        raise StatsInputError(f"sims must be >= 1, got {sims}")
    if days < 1 or units_per_arm < days:
        raise StatsInputError(
            f"need days >= 1 and at least one unit per arm per day (units_per_arm={units_per_arm}, days={days})"
        )
    per_day = math.ceil(units_per_arm / days)
    results: dict = {
        "sims": sims,
        "aa_fixed": {},
        "aa_peeking_naive": {},
        "aa_peeking_sequential": {},
        "coverage": {},
    }
    models = metrics or default_metrics()
    streams = np.random.SeedSequence(seed).spawn(len(models))
    for index, (model, stream) in enumerate(zip(models, streams, strict=True)):
        rng = np.random.default_rng(stream)
        control = _daily_sums(model, rng, sims, per_day, days, 0.0)
        treatment = _daily_sums(model, rng, sims, per_day, days, 0.0)
        fixed, always_valid = _p_values(model, control, treatment, alpha, tuning_n)
        results["aa_fixed"][model.name] = float(np.mean(fixed[-1] < alpha))
        results["aa_peeking_naive"][model.name] = float(np.mean((fixed < alpha).any(axis=0)))
        results["aa_peeking_sequential"][model.name] = float(
            np.mean((always_valid < alpha).any(axis=0))
        )
        # A/B: the A/A control against a fresh treatment arm with the true lift.
        final_control = tuple(part[-1] for part in control)
        final_treatment = tuple(
            part[-1] for part in _daily_sums(model, rng, sims, per_day * days, 1, lift)
        )
        covered = _relative_interval_covers(model, final_control, final_treatment, alpha, lift)
        results["coverage"][model.name] = float(np.mean(covered))
        if progress is not None:
            progress(index + 1, len(models), model.name)
    return results
