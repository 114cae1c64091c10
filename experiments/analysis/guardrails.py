"""Guardrails: is a treatment shown no worse than the experiment's margins?

One implementation for the report and the alerts (quality by the experiment's quality
signal, ``experiments.analysis.quality``; error-rate rise and latency p95 rise by the
non-inferiority tests of ``experiments.stats.noninferiority``), so a guardrail alert fires
exactly when the report's guardrail fails on the same sums. ``final_score`` is no
guardrail: it is the "score level" secondary metric.
"""

from __future__ import annotations

from experiments import stats
from experiments.analysis.quality import quality_guardrail
from experiments.analysis.sums import rate_stats
from experiments.stats.histograms import LATENCY_HIST_EDGES_MS, LATENCY_HIST_TOP_MS
from experiments.stats.ratio import RatioSums

LATENCY_QUANTILE = 0.95


def _plain(value):
    return value.as_dict() if isinstance(value, RatioSums) else value


def call_error_test(control: dict, treatment: dict, **options):
    return stats.rate_rise_noninferiority(rate_stats(control), rate_stats(treatment), **options)


def unit_error_test(control: RatioSums, treatment: RatioSums, **options):
    return stats.noninferiority.ratio_rise_noninferiority(control, treatment, **options)


def latency_quantile(
    hist: list[int] | None, *, alpha: float
) -> stats.quantiles.QuantileEstimate | None:
    """p95 latency and its interval from a summed histogram (None when empty)."""
    if not hist or sum(hist) == 0:
        return None
    return stats.histogram_quantile_ci(
        hist, LATENCY_HIST_EDGES_MS, LATENCY_QUANTILE, top=LATENCY_HIST_TOP_MS, alpha=alpha
    )


def guardrail_checks(
    *,
    control: dict,
    treatment: dict,
    control_hist: list[int] | None,
    treatment_hist: list[int] | None,
    control_quality: RatioSums | None,
    treatment_quality: RatioSums | None,
    settings: dict,
    unit_level: bool = False,
) -> list[dict]:
    """The three guardrails of one treatment, each ``{guardrail, margin, inputs, result,
    status, error}``; status ``pass`` / ``fail`` / ``inconclusive``.

    Quality is the check of the experiment's quality signal
    (:func:`~experiments.analysis.quality.quality_guardrail`) on each arm's unit-level
    sums of that signal (``control_quality`` / ``treatment_quality``; None: no signal).
    ``control`` / ``treatment`` map metric -> statistics: call-level dicts
    (``{n, successes}``) or, with ``unit_level``, per-unit
    :class:`~experiments.stats.ratio.RatioSums` (the error rate then by the delta method
    over units). Latency p95 is always the histogram quantile of the calls."""
    alpha, sequential, tuning_n = (
        settings["alpha"],
        settings["sequential_testing"],
        settings["tuning_n"],
    )
    checks = [
        quality_guardrail(control=control_quality, treatment=treatment_quality, settings=settings)
    ]
    error_test = unit_error_test if unit_level else call_error_test

    def run(name: str, margin: float, inputs: dict, function) -> None:
        entry = {
            "guardrail": name,
            "margin": margin,
            "inputs": inputs,
            "result": None,
            "error": None,
        }
        try:
            result = function()
            entry["result"] = result.as_dict()
            entry["status"] = result.status
        except stats.StatsInputError as error:
            entry["status"] = "inconclusive"
            entry["error"] = str(error)
        checks.append(entry)

    error_margin = settings["guardrail_error_rate_rise_pts"] / 100.0
    run(
        "error_rate",
        error_margin,
        {"control": _plain(control["error_rate"]), "treatment": _plain(treatment["error_rate"])},
        lambda: error_test(
            control["error_rate"],
            treatment["error_rate"],
            margin=error_margin,
            alpha=alpha,
            sequential=sequential,
            tuning_n=tuning_n,
        ),
    )
    latency_margin = settings["guardrail_latency_p95_rise_pct"] / 100.0
    control_q = latency_quantile(control_hist, alpha=alpha)
    treatment_q = latency_quantile(treatment_hist, alpha=alpha)

    def latency_test():
        if control_q is None or treatment_q is None:
            raise stats.StatsInputError("no successful calls with a latency in one of the arms yet")
        return stats.quantile_ratio_noninferiority(
            control_q,
            treatment_q,
            margin=latency_margin,
            alpha=alpha,
            sequential=sequential,
            tuning_n=tuning_n,
        )

    run(
        "latency_p95",
        latency_margin,
        {
            "control_latency_hist": control_hist,
            "treatment_latency_hist": treatment_hist,
            "quantile": LATENCY_QUANTILE,
            "control_quantile": control_q.as_dict() if control_q else None,
            "treatment_quantile": treatment_q.as_dict() if treatment_q else None,
        },
        latency_test,
    )
    return checks
