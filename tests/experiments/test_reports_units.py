"""Winner reports at the randomization unit: the delta method over UnitRollup sums,
CUPED, and the v2 export recomputed with numpy alone."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db.models import F

from experiments import reports
from experiments.analysis.quality import NOT_ENOUGH
from experiments.models import Arm, Experiment, Phase, RoutedCall
from experiments.rollups import rollups_rebuild
from experiments.stats.cuped import MomentSums
from tests.quality_factories import healthy_signals

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 1, tzinfo=UTC)
Z_975 = 1.959963984540054


def make_experiment(**fields) -> Experiment:
    experiment = Experiment.objects.create(
        key="units",
        name="Smart vs council per user",
        status=Experiment.Status.RUNNING,
        started_at=START,
        minimum_sample_per_arm=50,
        **fields,
    )
    Arm.objects.create(
        experiment=experiment, key="council", strategy="original_council", is_control=True
    )
    Arm.objects.create(experiment=experiment, key="smart", strategy="smart_routing", position=1)
    phase = Phase.objects.create(
        experiment=experiment,
        number=1,
        hash_seed="s",
        arm_keys=["council", "smart"],
        weights=[0.5, 0.5],
    )
    Phase.objects.filter(pk=phase.pk).update(started_at=START)
    return experiment


def simulate(experiment: Experiment, *, units=300, seed=3, pre_period=False) -> dict:
    """Units with heavy-tailed call counts and a per-unit cost level; the smart arm costs
    less. Returns per-unit arrays ``{arm: (calls, cost, pre_calls, pre_cost)}``."""
    rng = np.random.default_rng(seed)
    arms = {arm.key: arm for arm in experiment.arms.all()}
    phase = experiment.phases.get()
    rows, per_arm = [], {"council": [], "smart": []}
    for index in range(units):
        key = "smart" if index % 2 else "council"
        level = rng.lognormal(0.0, 1.0)
        calls = 1 + int(rng.poisson(rng.lognormal(0.7, 0.8)))
        scale = 0.004 * level * (0.6 if key == "smart" else 1.0)
        costs = [round(float(c), 10) for c in rng.gamma(4.0, scale / 4, calls)]
        exposed = START + timedelta(hours=index % 48)
        for number, cost in enumerate(costs):
            rows.append(
                RoutedCall(
                    idempotency_key=f"{index}-{number}",
                    status="success",
                    experiment=experiment,
                    arm=arms[key],
                    phase=phase,
                    unit_id=f"u{index}",
                    cost_usd=Decimal(f"{cost:.10f}"),
                    latency_ms=500.0,
                    confidence=0.8,
                    final_score=75.0,
                    completed_at=exposed + timedelta(minutes=number),
                )
            )
        pre = []
        if pre_period and rng.random() < 0.9:
            pre = [
                round(float(c), 10) for c in rng.gamma(4.0, 0.004 * level / 4, 1 + rng.poisson(8))
            ]
            for number, cost in enumerate(pre):
                rows.append(
                    RoutedCall(
                        idempotency_key=f"pre-{index}-{number}",
                        status="success",
                        unit_id=f"u{index}",
                        cost_usd=Decimal(f"{cost:.10f}"),
                        completed_at=exposed - timedelta(days=2, minutes=number),
                    )
                )
        per_arm[key].append((len(costs), sum(costs), len(pre), sum(pre)))
    RoutedCall.objects.bulk_create(rows)
    RoutedCall.objects.update(created_at=F("completed_at"))
    rollups_rebuild()
    return {key: np.asarray(values, dtype=float) for key, values in per_arm.items()}


def _numpy_ratio(arm: np.ndarray):
    """Ratio and its delta-method variance from per-unit values (independent of the code)."""
    x, y = arm[:, 0], arm[:, 1]
    ratio = y.sum() / x.sum()
    linear = (y - ratio * x) / x.mean()
    return ratio, np.var(linear, ddof=1) / x.size


def test_unit_experiment_is_analysed_per_unit_by_the_delta_method():
    """A user-level experiment's report uses the unit rollup: n = units, and the cost test
    equals a numpy delta method over the simulated units to 1e-6."""
    experiment = make_experiment(sequential_testing=False)
    units = simulate(experiment)
    report = reports.experiment_report(experiment=experiment)
    assert report["analysis_unit"] == "unit" and report["schema_version"] == 2
    test = next(t for t in report["tests"] if t["metric"] == "cost_per_request")
    (r_c, v_c), (r_t, v_t) = _numpy_ratio(units["council"]), _numpy_ratio(units["smart"])
    assert test["inputs"]["control"]["n"] == len(units["council"])
    assert test["absolute"]["difference"] == pytest.approx(r_t - r_c, rel=1e-6)
    assert test["absolute"]["standard_error"] == pytest.approx(math.sqrt(v_c + v_t), rel=1e-6)
    assert test["relative"]["lift"] == pytest.approx(r_t / r_c - 1, rel=1e-6)
    arms = {arm["key"]: arm for arm in report["arms"]}
    assert arms["smart"]["sample"] == len(units["smart"])
    assert arms["smart"]["unit_summary"]["calls"] == int(units["smart"][:, 0].sum())
    assert "cost_per_unit" in {t["metric"] for t in report["tests"]}


def _half_width(variance, n_total, alpha, tuning_n):
    """The confidence sequence's half width, written out with numpy."""
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning_n
    return np.sqrt(
        variance
        * n_total
        * 2
        * (n_total * rho2 + 1)
        / (n_total**2 * rho2)
        * np.log(np.sqrt(n_total * rho2 + 1) / alpha)
    )


def _ratio_numpy(s: dict) -> tuple[int, float, float]:
    """(units, ratio, delta-method variance of the ratio) of exported RatioSums, numpy."""
    n = s["n"]
    ratio = s["sum_y"] / s["sum_x"]
    var_x = (s["sum_xx"] - s["sum_x"] ** 2 / n) / (n - 1)
    var_y = (s["sum_yy"] - s["sum_y"] ** 2 / n) / (n - 1)
    cov = (s["sum_xy"] - s["sum_x"] * s["sum_y"] / n) / (n - 1)
    mean_x = s["sum_x"] / n
    return n, ratio, max(var_y - 2 * ratio * cov + ratio**2 * var_x, 0) / mean_x**2 / n


def test_export_v2_recomputes_every_unit_test_with_numpy_alone(tmp_path):
    """From the exported file only: per arm the unit sums; each unit-level test's
    difference, standard error, lift and decision interval follow with numpy, and so does
    the quality guardrail (agreement vs its floor) and the decision with its reasons."""
    experiment = make_experiment(sequential_testing=True)
    simulate(experiment, seed=5)
    healthy_signals(experiment, "smart")
    data = json.loads(reports.report_export_json(experiment=experiment))
    assert data["schema_version"] == 2 and data["settings"]["analysis_unit"] == "unit"
    arms = {arm["key"]: arm for arm in data["arms"]}
    checked = 0
    for test in data["tests"]:
        inputs = test["inputs"]
        assert inputs["analysis_unit"] == "unit"
        assert inputs["control"] == arms[test["control"]]["unit_sums"][test["metric"]]
        if test["p_value"] is None:
            continue
        (n_c, r_c, v_c), (n_t, r_t, v_t) = (
            _ratio_numpy(inputs[side]) for side in ("control", "treatment")
        )
        se = np.sqrt(v_c + v_t)
        assert test["absolute"]["difference"] == pytest.approx(r_t - r_c, rel=1e-9, abs=1e-15)
        assert test["absolute"]["standard_error"] == pytest.approx(se, rel=1e-9, abs=1e-15)
        half = _half_width(se**2, n_c + n_t, inputs["alpha"], inputs["tuning_n"])
        assert test["ci_low"] == pytest.approx(r_t - r_c - half, rel=1e-9, abs=1e-15)
        if r_c:
            lift = r_t / r_c - 1
            lift_se = np.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4)
            assert test["relative"]["lift"] == pytest.approx(lift, rel=1e-9, abs=1e-15)
            assert test["relative"]["ci_low"] == pytest.approx(
                lift - Z_975 * lift_se, rel=1e-9, abs=1e-12
            )
        checked += 1
    assert checked >= 6
    quality = next(g for g in data["guardrails"] if g["guardrail"] == "quality")
    assert quality["source"] == "agreement"
    settings = quality["inputs"]["settings"]
    n_t, r_t, v_t = _ratio_numpy(quality["inputs"]["treatment"])
    harm = settings["agreement_floor"] - r_t
    half = _half_width(v_t, n_t, settings["alpha"], settings["tuning_n"])
    assert quality["result"]["harm"] == pytest.approx(harm, rel=1e-9)
    assert quality["result"]["harm_high"] == pytest.approx(harm + half, rel=1e-9)
    assert harm + half < quality["margin"] and quality["status"] == "pass"
    assert reports.decide(data) == data["decision"]


def test_unmeasured_quality_never_passes_and_the_export_decides_the_same():
    """Without quality signals the quality guardrail is inconclusive ("not enough quality
    signals"), the decision says so and declares no winner, and ``decide`` on the
    exported file gives the same decision, reasons included."""
    experiment = make_experiment(sequential_testing=False)
    simulate(experiment, seed=5)
    data = json.loads(reports.report_export_json(experiment=experiment))
    quality = next(g for g in data["guardrails"] if g["guardrail"] == "quality")
    assert quality["status"] == "inconclusive" and NOT_ENOUGH in quality["error"]
    assert data["decision"]["status"] == reports.NO_WINNER_YET
    assert any(NOT_ENOUGH in reason for reason in data["decision"]["reasons"])
    assert reports.decide(data) == data["decision"]


def test_cuped_reports_the_variance_reduction_of_a_correlated_pre_period():
    """With CUPED on, each unit's calls in the look-back before its first exposure are its
    covariate: theta matches the per-unit computation and the variance drops >= 30%."""
    experiment = make_experiment(
        sequential_testing=False, cuped_enabled=True, cuped_lookback_days=14
    )
    units = simulate(experiment, units=400, seed=2, pre_period=True)
    report = reports.experiment_report(experiment=experiment)
    test = next(t for t in report["tests"] if t["metric"] == "cost_per_request")
    cuped = test["cuped"]
    assert test["method"].endswith("CUPED")
    expected = [MomentSums.from_units(units[key]) for key in ("council", "smart")]
    assert test["inputs"]["control_moments"]["sums"] == pytest.approx(
        list(expected[0].sums), rel=1e-9
    )
    assert cuped["variance_reduction"] >= 0.30
    assert cuped["standard_error"] < cuped["unadjusted_standard_error"]
    assert test["ci_low"] == pytest.approx(cuped["ci_low"], rel=1e-12)


def test_cuped_ignores_calls_outside_the_look_back():
    """A look-back of one day leaves out pre-period calls made two days before exposure:
    no unit has history, so nothing is adjusted."""
    experiment = make_experiment(
        sequential_testing=False, cuped_enabled=True, cuped_lookback_days=1
    )
    simulate(experiment, units=120, seed=4, pre_period=True)
    report = reports.experiment_report(experiment=experiment)
    test = next(t for t in report["tests"] if t["metric"] == "cost_per_request")
    assert test["cuped"]["theta"] == 0.0
    assert test["inputs"]["control_moments"]["sums"][2] == 0.0


def test_a_metric_given_as_ratio_sums_becomes_a_secondary_test():
    """A metric fed in as per-arm RatioSums (as quality signals are) is tested by the
    delta method, Holm-adjusted with the secondary family, and exported with its sums."""
    from experiments.stats.ratio import RatioSums, ratio_difference

    experiment = make_experiment(sequential_testing=False)
    simulate(experiment, units=100, seed=6)
    rng = np.random.default_rng(8)
    sums = {}
    for key, shift in (("council", 0.0), ("smart", 0.5)):
        x = rng.integers(1, 5, 80).astype(float)
        y = rng.normal((3.5 + shift) * x, 1.0)
        sums[key] = RatioSums.from_units(zip(x, y, strict=True))
    report = reports.experiment_report(experiment=experiment, extra_metrics={"judge_score": sums})
    test = next(t for t in report["tests"] if t["metric"] == "judge_score")
    expected = ratio_difference(sums["council"], sums["smart"])
    assert test["primary"] is False and test["p_value_adjusted"] is not None
    assert test["absolute"]["p_value"] == pytest.approx(expected.absolute.p_value, rel=1e-12)
    assert test["inputs"]["treatment"] == sums["smart"].as_dict()
