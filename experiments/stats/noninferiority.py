"""Non-inferiority tests for the guardrails: is the treatment no worse than a margin?

Each guardrail is phrased as a *harm* (positive = worse) with a margin:

- quality (final_score): relative drop, ``harm = -(mean_t / mean_c - 1)``, margin 2%;
- error rate: absolute rise in points, ``harm = p_t - p_c``, margin 1 point (0.01);
- latency p95: relative rise, ``harm = q95_t / q95_c - 1``, margin 10%.

``H0: harm >= margin`` against ``H1: harm < margin``. With ``[harm_low, harm_high]`` the
interval whose each side holds with probability ``1 - alpha``:

- ``pass`` when ``harm_high <= margin`` (non-inferiority shown; equivalently p < alpha),
- ``fail`` when ``harm_low > margin`` (the data rule the margin out: worse than allowed),
- ``inconclusive`` otherwise (not enough data yet).

Fixed-horizon bounds are one-sided normal bounds ``harm +- z_{1-alpha} se`` (Newcombe's
interval at level ``1 - 2 alpha`` for the error rate), and the p-value is
``Phi((harm - margin) / se)``. With ``sequential=True`` the bounds come from the two-sided
``1 - alpha`` confidence sequence (conservative for one side) and the p-value is the
always-valid p-value of ``margin - harm`` (1 when ``harm >= margin``), so a daily look at
the guardrails is safe too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Required, TypedDict, Unpack

from scipy import stats as scipy_stats

from experiments.stats import sequential as seq
from experiments.stats.errors import StatsInputError
from experiments.stats.means import check_alpha, delta_relative_arrays, moments
from experiments.stats.proportions import newcombe_arrays
from experiments.stats.quantiles import QuantileEstimate
from experiments.stats.ratio import RatioSums, ratio_arrays
from experiments.stats.results import AsDict
from experiments.stats.summaries import MeanStats, ProportionStats

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class NonInferiorityResult(AsDict):
    harm: float
    harm_low: float
    harm_high: float
    margin: float
    standard_error: float
    p_value: float
    status: str
    method: str
    alpha: float
    sequential: bool


def _status(harm_low: float, harm_high: float, margin: float) -> str:
    if harm_high <= margin:
        return PASS
    if harm_low > margin:
        return FAIL
    return INCONCLUSIVE


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 0:
        raise StatsInputError(f"margin must be a number >= 0, got {margin!r}")
    if not math.isfinite(margin):
        raise StatsInputError(f"margin must be finite, got {margin!r}")
    return float(margin)


class NonInferiorityOptions(TypedDict, total=False):
    """The keyword options every test here takes: ``margin`` (required, a fraction),
    ``alpha`` (0.05), ``sequential`` (False) and ``tuning_n``
    (``sequential.DEFAULT_TUNING_N``)."""

    margin: Required[float]
    alpha: float
    sequential: bool
    tuning_n: float


@dataclass(frozen=True)
class NonInferiorityTest:
    """The options of one test as :class:`NonInferiorityOptions` lists them."""

    margin: float
    alpha: float = 0.05
    sequential: bool = False
    tuning_n: float = seq.DEFAULT_TUNING_N


def _checked(options: NonInferiorityOptions) -> NonInferiorityTest:
    """The test of a public function's keyword options, margin and alpha checked (an
    unknown option is a TypeError, as for any keyword argument)."""
    test = NonInferiorityTest(**options)
    return replace(test, margin=_check_margin(test.margin), alpha=check_alpha(test.alpha))


def _fixed_p(harm: float, margin: float, se: float) -> float:
    if se <= 0:
        return 0.0 if harm < margin else 1.0
    return float(scipy_stats.norm.cdf((harm - margin) / se))


def _sequential_p(
    harm: float, margin: float, variance: float, n_total: int, alpha: float, tuning_n: float
) -> float:
    if harm >= margin:
        return 1.0
    return float(seq.p_value_arrays(margin - harm, variance, n_total, alpha, tuning_n))


def noninferiority_result(
    harm: float,
    se: float,
    test: NonInferiorityTest,
    n_total: int,
    method: str,
    fixed_bounds: tuple[float, float] | None = None,
    margin: float | None = None,
) -> NonInferiorityResult:
    """The result of ``harm`` with standard error ``se`` against ``margin`` (the test's
    margin unless given, e.g. on a log scale)."""
    margin = test.margin if margin is None else margin
    alpha, sequential, tuning_n = test.alpha, test.sequential, test.tuning_n
    if sequential:
        half = float(seq.half_width_arrays(se * se, n_total, alpha, tuning_n))
        low, high = harm - half, harm + half
        p = _sequential_p(harm, margin, se * se, n_total, alpha, tuning_n)
        method = f"{method}, confidence sequence"
    else:
        if fixed_bounds is None:
            z = float(scipy_stats.norm.ppf(1 - alpha))
            low, high = harm - z * se, harm + z * se
        else:
            low, high = fixed_bounds
        p = _fixed_p(harm, margin, se)
    return NonInferiorityResult(
        harm=harm,
        harm_low=low,
        harm_high=high,
        margin=margin,
        standard_error=se,
        p_value=min(max(p, 0.0), 1.0),
        status=_status(low, high, margin),
        method=method,
        alpha=alpha,
        sequential=sequential,
    )


def relative_mean_noninferiority(
    control: MeanStats,
    treatment: MeanStats,
    *,
    higher_is_better: bool = True,
    **options: Unpack[NonInferiorityOptions],
) -> NonInferiorityResult:
    """Relative non-inferiority of a mean (quality): ``harm = -lift`` when higher is
    better, else ``lift``; ``lift`` and its delta-method ``se`` as in
    :func:`experiments.stats.means.relative_difference`. ``margin`` is a fraction (0.02)."""
    test = _checked(options)
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, MeanStats) or arm.n < 2:
            raise StatsInputError(f"{name} must be MeanStats with n >= 2, got {arm!r}")
    arms = [moments(control), moments(treatment)]
    return _relative_result(arms, test, higher_is_better, "mean")


#: What the relative tests compare: (the control's value in messages, the method).
_RELATIVE_KINDS = {
    "mean": ("mean", "relative difference of means (delta method)"),
    "ratio": ("value", "relative difference of ratios (delta method over units)"),
}


def _relative_result(
    arms: list[tuple[int, float, float]],
    test: NonInferiorityTest,
    higher_is_better: bool,
    kind: str,
) -> NonInferiorityResult:
    """The relative non-inferiority of ``(n, value, variance)`` of control and treatment
    (a mean, or a ratio with its per-unit variance): ``harm = -lift`` when higher is
    better, else ``lift``, with the delta-method ``se`` of the lift."""
    (control, treatment), (value, method) = arms, _RELATIVE_KINDS[kind]
    if control[1] == 0:
        raise StatsInputError(f"a relative margin needs a control {value} other than 0")
    lift, se, _z, _p = delta_relative_arrays(*control, *treatment)
    harm = -float(lift) if higher_is_better else float(lift)
    return noninferiority_result(harm, float(se), test, control[0] + treatment[0], method)


def rate_rise_noninferiority(
    control: ProportionStats, treatment: ProportionStats, **options: Unpack[NonInferiorityOptions]
) -> NonInferiorityResult:
    """Absolute non-inferiority of a rate that should not rise (error rate):
    ``harm = p_t - p_c``, margin in fractions (1 point = 0.01). Fixed bounds: Newcombe's
    interval at ``1 - 2 alpha``; p-value and sequential variance from the unpooled
    ``se^2 = p_t (1-p_t) / n_t + p_c (1-p_c) / n_c``, with the sequential variance using
    ``(x + 1) / (n + 2)`` so that zero events still give a positive width."""
    test = _checked(options)
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, ProportionStats) or arm.n < 1:
            raise StatsInputError(f"{name} must be ProportionStats with n >= 1, got {arm!r}")
    harm = treatment.rate - control.rate
    if test.sequential:
        adjusted = [(arm.successes + 1) / (arm.n + 2) for arm in (control, treatment)]
        se = math.sqrt(
            adjusted[0] * (1 - adjusted[0]) / control.n
            + adjusted[1] * (1 - adjusted[1]) / treatment.n
        )
        bounds = None
    else:
        se = math.sqrt(
            control.rate * (1 - control.rate) / control.n
            + treatment.rate * (1 - treatment.rate) / treatment.n
        )
        low, high = newcombe_arrays(
            control.successes, control.n, treatment.successes, treatment.n, 2 * test.alpha
        )
        bounds = (float(low), float(high))
    method = "difference of rates" if test.sequential else "difference of rates (Newcombe)"
    return noninferiority_result(
        harm, se, test, control.n + treatment.n, method, fixed_bounds=bounds
    )


def quantile_ratio_noninferiority(
    control: QuantileEstimate, treatment: QuantileEstimate, **options: Unpack[NonInferiorityOptions]
) -> NonInferiorityResult:
    """Relative non-inferiority of a quantile that should not rise (latency p95).

    On the log scale ``L = ln q_t - ln q_c`` with ``Var(L) = se_t^2 + se_c^2`` (each
    ``se`` from the quantile's order-statistic interval); bounds ``L +- w`` map back to
    ``harm = exp(L) - 1``; ``margin`` is a fraction (0.10). The p-value tests
    ``L >= ln(1 + margin)``."""
    test = _checked(options)
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, QuantileEstimate):
            raise StatsInputError(f"{name} must be a QuantileEstimate, got {arm!r}")
        if arm.log_standard_error is None or arm.estimate <= 0:
            raise StatsInputError(
                f"{name} quantile has no usable interval yet (n = {arm.n}); collect more calls"
            )
    log_ratio = math.log(treatment.estimate) - math.log(control.estimate)
    se = math.hypot(control.log_standard_error, treatment.log_standard_error)
    on_log_scale = noninferiority_result(
        log_ratio,
        se,
        test,
        control.n + treatment.n,
        "ratio of quantiles (log scale)",
        margin=math.log1p(test.margin),
    )
    low, high = math.expm1(on_log_scale.harm_low), math.expm1(on_log_scale.harm_high)
    return replace(
        on_log_scale,
        harm=math.expm1(log_ratio),
        harm_low=low,
        harm_high=high,
        margin=test.margin,
        status=_status(low, high, test.margin),
    )


def _ratio_pair(control: RatioSums, treatment: RatioSums):
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, RatioSums) or arm.n < 2 or arm.sum_x <= 0:
            raise StatsInputError(
                f"{name} must be RatioSums with n >= 2 units and calls, got {arm!r}"
            )
    (r_c, v_c), (r_t, v_t) = (
        ratio_arrays(arm.n, arm.sum_x, arm.sum_y, arm.sum_xx, arm.sum_yy, arm.sum_xy)
        for arm in (control, treatment)
    )
    return float(r_c), float(v_c), float(r_t), float(v_t)


def relative_ratio_noninferiority(
    control: RatioSums,
    treatment: RatioSums,
    *,
    higher_is_better: bool = True,
    **options: Unpack[NonInferiorityOptions],
) -> NonInferiorityResult:
    """:func:`relative_mean_noninferiority` for a ratio metric over units (quality per
    scored call): the lift ``r_t / r_c - 1`` and its delta-method ``se`` from per-unit
    sums (``experiments.stats.ratio``)."""
    test = _checked(options)
    r_c, v_c, r_t, v_t = _ratio_pair(control, treatment)
    arms = [(control.n, r_c, v_c), (treatment.n, r_t, v_t)]
    return _relative_result(arms, test, higher_is_better, "ratio")


def ratio_rise_noninferiority(
    control: RatioSums, treatment: RatioSums, **options: Unpack[NonInferiorityOptions]
) -> NonInferiorityResult:
    """:func:`rate_rise_noninferiority` for a rate over units (errors per call):
    ``harm = r_t - r_c`` with the delta-method ``se^2 = Var(r_t) + Var(r_c)``."""
    test = _checked(options)
    r_c, v_c, r_t, v_t = _ratio_pair(control, treatment)
    se = math.sqrt(v_c / control.n + v_t / treatment.n)
    method = "difference of ratios (delta method over units)"
    return noninferiority_result(r_t - r_c, se, test, control.n + treatment.n, method)
