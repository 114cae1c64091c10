"""Statistics validity: the simulation suites at 10,000 experiments (independent calls,
and clustered units with ratio metrics and CUPED), and agreement with scipy / statsmodels.

The same code as ``python manage.py routing stats-validate --sims 10000`` (fixed seeds,
2,000 units per arm, 28 daily looks, alpha 5%): A/A false-positive rate per metric with
one look, with 28 daily looks (fixed-horizon vs always-valid p-values), and the coverage
of the 95% interval for the relative lift of an A/B test with a true 5% lift. Then the
largest relative deviation of our p-values and intervals from scipy / statsmodels on the
same (random) inputs. Pure Python: no Django, no database.

Run alone: ``python -m benchmarks.bench_stats_validity [--quick]``.
"""

from __future__ import annotations

import json
import sys
import time

TITLE = "Statistics validity: A/A false positives, peeking, CI coverage; agreement with scipy/statsmodels"


def _relative_deviation(ours: float, reference: float) -> float:
    return abs(ours - reference) / max(abs(reference), 1e-300)


def reference_agreement(cases: int = 200, seed: int = 11) -> dict[str, float]:
    """Max relative deviation per function family over random inputs."""
    import numpy as np
    from scipy import stats as scipy_stats
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        proportion_confint,
        proportions_ztest,
    )

    from experiments import stats

    rng = np.random.default_rng(seed)
    worst = dict.fromkeys(
        (
            "welch t-test",
            "paired t-test",
            "wilson / clopper-pearson",
            "newcombe + z-test",
            "holm",
            "srm chi-square",
            "power / sample size",
        ),
        0.0,
    )
    for _ in range(cases):
        control = rng.lognormal(0, 1, int(rng.integers(20, 400)))
        treatment = rng.lognormal(0.1, 1.2, int(rng.integers(20, 400)))
        ours = stats.welch_t_test(
            stats.MeanStats.from_values(control), stats.MeanStats.from_values(treatment)
        )
        reference = scipy_stats.ttest_ind(treatment, control, equal_var=False)
        interval = reference.confidence_interval()
        worst["welch t-test"] = max(
            worst["welch t-test"],
            _relative_deviation(ours.p_value, reference.pvalue),
            _relative_deviation(ours.ci_low, interval.low),
            _relative_deviation(ours.ci_high, interval.high),
        )
        pairs = rng.normal(0.2, 1, int(rng.integers(5, 200)))
        paired = stats.paired_t_test(stats.MeanStats.from_values(pairs))
        worst["paired t-test"] = max(
            worst["paired t-test"],
            _relative_deviation(paired.p_value, scipy_stats.ttest_1samp(pairs, 0).pvalue),
        )
        n = int(rng.integers(5, 2000))
        x = int(rng.integers(0, n + 1))
        wilson = stats.wilson_interval(stats.ProportionStats(n, x))
        exact = stats.clopper_pearson_interval(stats.ProportionStats(n, x))
        for ours_value, reference_value in zip(
            (wilson.ci_low, wilson.ci_high, exact.ci_low, exact.ci_high),
            (*proportion_confint(x, n, method="wilson"), *proportion_confint(x, n, method="beta")),
            strict=True,
        ):
            worst["wilson / clopper-pearson"] = max(
                worst["wilson / clopper-pearson"], abs(ours_value - reference_value)
            )
        n_c, n_t = int(rng.integers(200, 5000)), int(rng.integers(200, 5000))
        x_c, x_t = int(rng.binomial(n_c, 0.1)), int(rng.binomial(n_t, 0.12))
        test = stats.two_proportion_test(
            stats.ProportionStats(n_c, x_c), stats.ProportionStats(n_t, x_t)
        )
        low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb")
        worst["newcombe + z-test"] = max(
            worst["newcombe + z-test"],
            abs(test.ci_low - low),
            abs(test.ci_high - high),
            _relative_deviation(test.p_value, proportions_ztest([x_t, x_c], [n_t, n_c])[1])
            if test.test == "pooled z"
            else 0.0,
        )
        p_values = rng.uniform(0, 0.2, int(rng.integers(1, 10))).tolist()
        adjusted = stats.holm_bonferroni(p_values)
        reference_adjusted = multipletests(p_values, method="holm")[1]
        worst["holm"] = max(
            worst["holm"], *(abs(a - b) for a, b in zip(adjusted, reference_adjusted, strict=True))
        )
        counts = rng.integers(900, 1100, 3).tolist()
        srm = stats.srm_test(counts, [1, 1, 1])
        worst["srm chi-square"] = max(
            worst["srm chi-square"],
            _relative_deviation(srm.p_value, scipy_stats.chisquare(counts).pvalue),
        )
        effect = float(rng.uniform(0.05, 1.0))
        size = stats.sample_size_per_arm(
            variance_control=1.0, variance_treatment=1.0, effect=effect
        )
        worst["power / sample size"] = max(
            worst["power / sample size"],
            _relative_deviation(
                size.per_arm_exact,
                NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8),
            ),
        )
    return worst


def clustered_figures(sims: int) -> list[dict]:
    """The clustered-unit suite (``experiments.stats.simulation_units``) at ``sims``."""
    from experiments.stats.simulation_units import (
        DEFAULT_UNITS_PER_ARM,
        UNIT_VALIDITY_CHECKS,
        run_unit_validation,
    )

    started = time.perf_counter()
    results = run_unit_validation(sims=sims)
    elapsed = time.perf_counter() - started
    figures = []
    for key, title, target, check in UNIT_VALIDITY_CHECKS:
        for metric, rate in results[key].items():
            agreement = key == "reference_agreement"
            figures.append(
                {
                    "metric": f"{title}: {metric}",
                    "value": float(f"{rate:.3g}") if agreement else round(rate * 100, 2),
                    "unit": "max deviation" if agreement else "%",
                    "target": target,
                    "met": check(rate) if sims >= 10_000 or agreement else None,
                    "notes": f"{sims:,} simulated experiments, {DEFAULT_UNITS_PER_ARM:,} units "
                    "per arm, 1 + Poisson(lognormal(0.7, 1)) calls per unit, fixed seed",
                }
            )
    figures.append(
        {
            "metric": f"clustered-unit suite run time ({sims:,} simulations)",
            "value": round(elapsed, 1),
            "unit": "s",
            "target": "-",
            "met": None,
            "notes": "numpy-vectorised over simulations; one process",
        }
    )
    return figures


def run(quick: bool = False) -> list[dict]:
    from experiments.stats.simulation import (
        DEFAULT_DAYS,
        DEFAULT_UNITS_PER_ARM,
        VALIDITY_CHECKS,
        run_validation,
    )

    sims = 1_000 if quick else 10_000
    started = time.perf_counter()
    results = run_validation(sims=sims)
    elapsed = time.perf_counter() - started
    figures = []
    for key, title, target, check in VALIDITY_CHECKS:
        for metric, rate in results[key].items():
            figures.append(
                {
                    "metric": f"{title}: {metric}",
                    "value": round(rate * 100, 2),
                    "unit": "%",
                    "target": target,
                    "met": check(rate) if sims >= 10_000 else None,
                    "notes": f"{sims:,} simulated experiments, {DEFAULT_UNITS_PER_ARM:,} units per arm, "
                    f"{DEFAULT_DAYS} days, fixed seed",
                }
            )
    figures.append(
        {
            "metric": f"validity suite run time ({sims:,} simulations x 6 metrics)",
            "value": round(elapsed, 1),
            "unit": "s",
            "target": "-",
            "met": None,
            "notes": "numpy-vectorised over simulations; one process",
        }
    )
    figures += clustered_figures(sims)
    for family, raw_deviation in reference_agreement(cases=50 if quick else 200).items():
        deviation = float(raw_deviation)
        figures.append(
            {
                "metric": f"agreement with scipy/statsmodels: {family}",
                "value": float(f"{deviation:.3g}"),
                "unit": "max deviation",
                "target": "<= 1e-6",
                "met": deviation <= 1e-6,
                "notes": "largest relative (p-values, n) or absolute (interval limits) deviation over random inputs",
            }
        )
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
