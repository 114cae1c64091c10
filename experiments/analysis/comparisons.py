"""The tests of one metric, treatment vs control: call-level, unit-level, CUPED.

Every function returns the same shape, so the report, the alerts, the dashboard and the
export read one structure: ``{"absolute", "relative", "sequential", "p_value", "ci_low",
"ci_high", "relative_ci_low", "relative_ci_high", "error", "method"}``, where
``p_value`` and the intervals are the ones the decision uses (always-valid when
sequential). Holm-Bonferroni across a report's tests is :func:`adjust_families`.

- call level (:func:`compare_metric`): Welch's t for means, the two-proportion test for
  rates, as before; exact when the experiment's unit is the request;
- unit level (:func:`compare_ratio_metric`): the delta method on per-unit sums
  (``experiments.stats.ratio.ratio_difference``); any metric given as per-arm RatioSums
  (quality signals included) goes through it;
- CUPED (:func:`compare_cuped_metric`): the same, adjusted by each unit's pre-exposure
  value (``experiments.stats.cuped``).
"""

from __future__ import annotations

from typing import Any

from experiments import stats
from experiments.analysis.metrics import PRIMARY_METRIC, metric_spec
from experiments.analysis.sums import mean_stats, rate_stats, ratio_sums
from experiments.stats import sequential as stats_sequential
from experiments.stats.cuped import MomentSums, cuped_ratio_difference
from experiments.stats.ratio import RatioSums, ratio_difference

#: Power of the time-to-decision estimate.
DECISION_POWER = 0.8


def _failed(out: dict, error: Exception) -> dict:
    out["error"] = str(error)
    out.update(p_value=None, ci_low=None, ci_high=None, relative_ci_low=None, relative_ci_high=None)
    return out


def compare_metric(
    *,
    metric: str,
    control: dict,
    treatment: dict,
    alpha: float,
    sequential: bool,
    tuning_n: float = stats_sequential.DEFAULT_TUNING_N,
) -> dict:
    """One metric, treatment vs control, from sufficient statistics. Returns
    ``{"absolute", "relative", "sequential", "p_value", "ci_low", "ci_high",
    "relative_ci_low", "relative_ci_high", "error"}``: ``p_value`` and the intervals
    are the ones the decision uses (always-valid when ``sequential``)."""
    family = metric_spec(metric)[0]
    out: dict[str, Any] = {
        "absolute": None,
        "relative": None,
        "sequential": None,
        "error": None,
        "method": "welch" if family == "mean" else "two proportions",
    }
    try:
        if family == "mean":
            control_stats, treatment_stats = mean_stats(control), mean_stats(treatment)
            absolute = stats.welch_t_test(control_stats, treatment_stats, alpha=alpha)
            out["absolute"] = absolute.as_dict()
            difference, variance = absolute.difference, absolute.standard_error**2
            try:
                relative = stats.relative_difference(control_stats, treatment_stats, alpha=alpha)
                out["relative"] = relative.as_dict()
            except stats.StatsInputError as error:
                out["relative_error"] = str(error)
        else:
            control_stats, treatment_stats = rate_stats(control), rate_stats(treatment)
            absolute = stats.two_proportion_test(control_stats, treatment_stats, alpha=alpha)
            out["absolute"] = absolute.as_dict()
            difference, variance = absolute.difference, absolute.standard_error**2
            if absolute.relative_lift is not None:
                out["relative"] = {
                    "lift": absolute.relative_lift,
                    "ci_low": absolute.relative_ci_low,
                    "ci_high": absolute.relative_ci_high,
                }
    except stats.StatsInputError as error:
        return _failed(out, error)
    _decision_figures(out, out["absolute"], out["relative"])
    if sequential:
        n_total = int(control["n"] + treatment["n"])
        absolute_cs = stats.confidence_sequence(
            estimate=difference, variance=variance, n_total=n_total, alpha=alpha, tuning_n=tuning_n
        )
        relative_cs = None
        relative_variance = _relative_variance(family, out["relative"], control, treatment)
        if relative_variance is not None:
            relative_cs = stats.confidence_sequence(
                estimate=out["relative"]["lift"],
                variance=relative_variance,
                n_total=n_total,
                alpha=alpha,
                tuning_n=tuning_n,
            )
        _sequential_figures(out, absolute_cs, relative_cs)
    return out


def _relative_variance(family: str, relative: dict | None, control: dict, treatment: dict):
    """The variance of the relative lift for its confidence sequence: the means' delta-
    method se, or for rates that se recomputed from the counts; None without a lift."""
    if not relative:
        return None
    if family == "mean":
        se = relative.get("standard_error")
        return None if se is None else se**2
    _lift, se = stats.proportions.relative_rate_arrays(
        control["successes"], control["n"], treatment["successes"], treatment["n"]
    )
    return float(se) ** 2


def _decision_figures(out: dict, absolute: dict, relative: dict | None) -> None:
    """The fixed-horizon p-value and intervals the decision uses."""
    out["p_value"] = absolute["p_value"]
    out["ci_low"], out["ci_high"] = absolute["ci_low"], absolute["ci_high"]
    out["relative_ci_low"] = relative["ci_low"] if relative else None
    out["relative_ci_high"] = relative["ci_high"] if relative else None


def _sequential_figures(out: dict, absolute_cs, relative_cs) -> None:
    """The always-valid p-value and intervals (confidence sequences) replace the fixed
    ones; the relative interval only when there is a relative sequence."""
    out["sequential"] = {
        "absolute": absolute_cs.as_dict(),
        "relative": relative_cs.as_dict() if relative_cs else None,
    }
    out["p_value"] = absolute_cs.p_value
    out["ci_low"], out["ci_high"] = absolute_cs.ci_low, absolute_cs.ci_high
    if relative_cs:
        out["relative_ci_low"], out["relative_ci_high"] = relative_cs.ci_low, relative_cs.ci_high


def time_to_decision(
    *,
    control: dict,
    treatment: dict,
    settings: dict,
    days_elapsed: float,
    metric: str = PRIMARY_METRIC,
) -> dict:
    """Units per arm to detect the effect observed so far on the primary metric (80%
    power), and the days until both arms hold them at the current rate."""
    entry: dict[str, Any] = {"metric": metric, "power": DECISION_POWER, "error": None}
    try:
        control_stats, treatment_stats = (
            mean_stats(control[metric]),
            mean_stats(treatment[metric]),
        )
        effect = treatment_stats.mean - control_stats.mean
        if effect == 0:
            raise stats.StatsInputError("no difference observed yet; the sample size is unbounded")
        size = stats.sample_size_per_arm(
            variance_control=control_stats.variance,
            variance_treatment=treatment_stats.variance,
            effect=effect,
            alpha=settings["alpha"],
            power=DECISION_POWER,
            sequential=settings["sequential_testing"],
            tuning_n=settings["tuning_n"],
        )
        required = max(size.per_arm, settings["minimum_sample_per_arm"])
        current = [control[metric]["n"], treatment[metric]["n"]]
        rates = [count / days_elapsed for count in current] if days_elapsed > 0 else [0.0, 0.0]
        entry.update(
            sample_size=size.as_dict(),
            required_per_arm=required,
            current_per_arm=current,
            daily_units_per_arm=rates,
            days_to_decision=stats.days_to_decision(
                required_per_arm=required, current_per_arm=current, daily_units_per_arm=rates
            ),
        )
    except stats.StatsInputError as error:
        entry["error"] = str(error)
    return entry


def compare_ratio_metric(
    *,
    metric: str,
    control: RatioSums | dict,
    treatment: RatioSums | dict,
    alpha: float,
    sequential: bool,
    tuning_n: float = stats_sequential.DEFAULT_TUNING_N,
) -> dict:
    """One ratio metric at the unit level (delta method), in :func:`compare_metric`'s
    shape; ``control`` / ``treatment`` are per-arm RatioSums (or their ``as_dict()``)."""
    out: dict[str, Any] = {
        "absolute": None,
        "relative": None,
        "sequential": None,
        "error": None,
        "method": "delta method over units",
    }
    try:
        control = control if isinstance(control, RatioSums) else ratio_sums(control)
        treatment = treatment if isinstance(treatment, RatioSums) else ratio_sums(treatment)
        result = ratio_difference(
            control, treatment, alpha=alpha, sequential=sequential, tuning_n=tuning_n
        )
    except stats.StatsInputError as error:
        return _failed(out, error)
    out["absolute"] = result.absolute.as_dict()
    out["relative"] = result.relative.as_dict() if result.relative else None
    _decision_figures(out, out["absolute"], out["relative"])
    if sequential:
        _sequential_figures(out, result.sequential_absolute, result.sequential_relative)
    return out


def compare_cuped_metric(
    *,
    metric: str,
    control: MomentSums,
    treatment: MomentSums,
    alpha: float,
    sequential: bool,
    tuning_n: float = stats_sequential.DEFAULT_TUNING_N,
) -> dict:
    """One ratio metric at the unit level with CUPED: the unadjusted test
    (:func:`compare_ratio_metric`) plus a ``cuped`` entry; the decision's p-value and
    intervals are the adjusted ones."""
    out = compare_ratio_metric(
        metric=metric,
        control=control.ratio_sums(),
        treatment=treatment.ratio_sums(),
        alpha=alpha,
        sequential=sequential,
        tuning_n=tuning_n,
    )
    if out["error"]:
        return out
    try:
        result = cuped_ratio_difference(
            control, treatment, alpha=alpha, sequential=sequential, tuning_n=tuning_n
        )
    except stats.StatsInputError as error:
        out["cuped_error"] = str(error)
        return out
    out["method"] = "delta method over units, CUPED"
    out["cuped"] = result.as_dict()
    if sequential:
        out["p_value"] = result.sequential_absolute.p_value
        out["ci_low"], out["ci_high"] = (
            result.sequential_absolute.ci_low,
            result.sequential_absolute.ci_high,
        )
        if result.sequential_relative is not None:
            out["relative_ci_low"] = result.sequential_relative.ci_low
            out["relative_ci_high"] = result.sequential_relative.ci_high
    else:
        out["p_value"] = result.p_value
        out["ci_low"], out["ci_high"] = result.ci_low, result.ci_high
        out["relative_ci_low"], out["relative_ci_high"] = result.lift_ci_low, result.lift_ci_high
    return out


def adjust_families(tests: list[dict], *, alpha: float) -> None:
    """Holm-Bonferroni within the primary family and within the secondary family: sets
    ``p_value_adjusted`` and ``significant`` on each test (in place)."""
    for primary in (True, False):
        family = [t for t in tests if t["primary"] == primary and t["p_value"] is not None]
        adjusted = stats.holm_bonferroni([test["p_value"] for test in family])
        for test, value in zip(family, adjusted, strict=True):
            test["p_value_adjusted"] = value
            test["significant"] = value < alpha
        for test in tests:
            if test["primary"] == primary and test["p_value"] is None:
                test["p_value_adjusted"] = None
                test["significant"] = False


def unit_time_to_decision(
    *, control: RatioSums, treatment: RatioSums, settings: dict, days_elapsed: float
) -> dict:
    """:func:`time_to_decision` at the unit level: units per arm from the per-unit
    (linearised) variances of the primary ratio."""
    control_est = stats.ratio.ratio_estimate(control)
    treatment_est = stats.ratio.ratio_estimate(treatment)
    as_means = {}
    for name, sums, estimate in (
        ("control", control, control_est),
        ("treatment", treatment, treatment_est),
    ):
        # A MeanStats with the ratio as its mean and the per-unit variance as its variance.
        n = sums.n
        variance = estimate.variance * n if n else 0.0
        total = estimate.value * n
        squares = variance * (n - 1) + total * total / n if n else 0.0
        as_means[name] = {PRIMARY_METRIC: {"n": n, "sum": total, "sum_squares": squares}}
    return time_to_decision(
        control=as_means["control"],
        treatment=as_means["treatment"],
        settings=settings,
        days_elapsed=days_elapsed,
    )
