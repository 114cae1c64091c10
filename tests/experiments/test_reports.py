"""Winner reports: sufficient statistics from rollups, the decision rule, the export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments import reports, stats
from experiments.analysis.quality import QualitySettings, quality_check
from experiments.models import Arm, ArmRollup, Assignment, Experiment, Phase, RoutedCall
from experiments.stats.histograms import (
    CONFIDENCE_HIST_SIZE,
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
    LATENCY_HIST_TOP_MS,
    confidence_bucket,
    latency_bucket,
)
from experiments.stats.ratio import RatioSums
from tests.quality_factories import add_signals, healthy_signals

pytestmark = pytest.mark.django_db
_sequence = count()
START = datetime(2026, 11, 1, tzinfo=UTC)
NOW = START + timedelta(days=14)


def make_experiment(*, sequential: bool = True, minimum: int = 200, **fields) -> Experiment:
    experiment = Experiment.objects.create(
        key=f"report-{next(_sequence)}",
        name="Smart routing vs council",
        status=Experiment.Status.RUNNING,
        sequential_testing=sequential,
        minimum_sample_per_arm=minimum,
        started_at=START,
        **fields,
    )
    Arm.objects.create(
        experiment=experiment,
        key="council",
        strategy="original_council",
        is_control=True,
        position=0,
    )
    Arm.objects.create(experiment=experiment, key="smart", strategy="smart_routing", position=1)
    phase = Phase.objects.create(
        experiment=experiment,
        number=1,
        hash_seed="seed",
        arm_keys=["council", "smart"],
        weights=[0.5, 0.5],
    )
    Phase.objects.filter(pk=phase.pk).update(started_at=START)
    return experiment


def assign_units(experiment: Experiment, counts: dict[str, int]) -> None:
    phase = experiment.phases.get()
    arms = {arm.key: arm for arm in experiment.arms.all()}
    Assignment.objects.bulk_create(
        Assignment(experiment=experiment, phase=phase, arm=arms[key], unit_id=f"{key}-{index}")
        for key, n in counts.items()
        for index in range(n)
    )


def add_day(
    experiment: Experiment,
    arm_key: str,
    day: int,
    *,
    n: int,
    rng: np.random.Generator,
    cost_mean: float = 0.01,
    quality_mean: float = 75.0,
    latency_median: float = 800.0,
    error_rate: float = 0.01,
    escalation_rate: float = 0.15,
    confidence_mean: float = 0.8,
) -> None:
    """One day of calls of one arm, summed the way rollup_apply sums them into ArmRollup
    rows (one success row and one error row)."""
    errors = int(rng.binomial(n, error_rate))
    ok = n - errors
    cost = rng.gamma(2.0, cost_mean / 2.0, ok)
    quality = rng.normal(quality_mean, 10.0, ok)
    latency = rng.lognormal(np.log(latency_median), 0.5, ok)
    confidence = np.clip(rng.normal(confidence_mean, 0.08, ok), 0, 1)
    escalated = int(rng.binomial(ok, escalation_rate))
    latency_buckets = np.where(
        latency < 1,
        0,
        np.minimum(np.floor(20 * np.log10(latency) + 1e-9) + 1, LATENCY_HIST_SIZE - 1),
    ).astype(int)
    latency_hist = np.bincount(latency_buckets, minlength=LATENCY_HIST_SIZE).tolist()
    confidence_buckets = np.minimum(np.floor(confidence * 50 + 1e-9), CONFIDENCE_HIST_SIZE - 1)
    confidence_hist = np.bincount(
        confidence_buckets.astype(int), minlength=CONFIDENCE_HIST_SIZE
    ).tolist()
    assert latency_hist[latency_bucket(float(latency[0]))] > 0
    assert confidence_hist[confidence_bucket(float(confidence[0]))] > 0
    bucket = START + timedelta(days=day, hours=12)
    common = {"bucket_start": bucket, "experiment_key": experiment.key, "arm_key": arm_key}
    ArmRollup.objects.create(
        **common,
        status="success",
        n=ok,
        escalated_n=escalated,
        cost_usd_sum=Decimal(str(round(float(cost.sum()), 10))),
        baseline_cost_usd_sum=Decimal(str(round(ok * 0.01, 10))),
        cost_usd_sumsq=float((cost**2).sum()),
        latency_n=ok,
        latency_ms_sum=float(latency.sum()),
        latency_ms_sumsq=float((latency**2).sum()),
        confidence_n=ok,
        confidence_sum=float(confidence.sum()),
        confidence_sumsq=float((confidence**2).sum()),
        quality_n=ok,
        quality_sum=float(quality.sum()),
        quality_sumsq=float((quality**2).sum()),
        latency_hist=latency_hist,
        confidence_hist=confidence_hist,
    )
    if errors:
        ArmRollup.objects.create(
            **common,
            status="error",
            n=errors,
            latency_hist=[0] * LATENCY_HIST_SIZE,
            confidence_hist=[0] * CONFIDENCE_HIST_SIZE,
        )


def fill(experiment, *, days=14, per_day=1500, seed=7, smart=None, council=None, first_day=0):
    rng = np.random.default_rng(seed)
    for day in range(first_day, first_day + days):
        add_day(experiment, "council", day, n=per_day, rng=rng, **(council or {}))
        add_day(
            experiment, "smart", day, n=per_day, rng=rng, **({"cost_mean": 0.002} | (smart or {}))
        )


def test_clear_savings_with_healthy_guardrails_make_a_winner():
    """Much cheaper calls, equal quality, errors and latency, balanced units: winner."""
    experiment = make_experiment()
    fill(experiment)
    assign_units(experiment, {"council": 500, "smart": 500})
    healthy_signals(experiment, "smart")
    report = reports.experiment_report(experiment=experiment, now=NOW)
    decision = report["decision"]
    assert decision["status"] == reports.WINNER, decision
    assert decision["arm"] == "smart"
    assert decision["rollback_recommended"] is False
    assert {g["guardrail"]: g["status"] for g in report["guardrails"]} == {
        "quality": "pass",
        "error_rate": "pass",
        "latency_p95": "pass",
    }
    cost = next(t for t in report["tests"] if t["id"] == "cost_per_request:smart")
    assert cost["relative"]["lift"] == pytest.approx(-0.8, abs=0.03)
    assert cost["significant"] is True
    assert report["srm"]["unit"] == "assignments"
    assert report["srm"]["result"]["mismatch"] is False


def test_too_few_calls_is_no_winner_yet_naming_the_sample():
    """A big effect on a few calls per arm is not yet a winner; the sample is missing."""
    experiment = make_experiment(minimum=1000)
    fill(experiment, days=2, per_day=100)
    report = reports.experiment_report(experiment=experiment, now=NOW)
    assert report["decision"]["status"] == reports.NO_WINNER_YET
    assert "sample" in report["decision"]["missing"]
    assert any("200 of 1000" in reason for reason in report["decision"]["reasons"])


def test_no_difference_is_no_winner_yet_for_lack_of_significance():
    """Identical arms: no winner yet, significance missing, with a days-to-decision estimate
    or a stated reason why none exists."""
    experiment = make_experiment()
    fill(experiment, days=3, per_day=200, smart={"cost_mean": 0.01})
    report = reports.experiment_report(experiment=experiment, now=NOW)
    assert report["decision"]["status"] == reports.NO_WINNER_YET
    assert "significance" in report["decision"]["missing"]
    timing = report["time_to_decision"]["smart"]
    assert timing["error"] or timing["required_per_arm"] >= 200


def test_sample_ratio_mismatch_blocks_a_winner():
    """The winner's data with units split 580/420 under 50/50 weights: invalid."""
    experiment = make_experiment()
    fill(experiment)
    assign_units(experiment, {"council": 580, "smart": 420})
    report = reports.experiment_report(experiment=experiment, now=NOW)
    assert report["srm"]["result"]["p_value"] < 0.001
    assert report["decision"]["status"] == reports.INVALID
    assert report["decision"]["arm"] is None
    assert "Sample-ratio mismatch" in report["decision"]["reasons"][0]


def test_srm_falls_back_to_calls_without_assignments():
    """Without persisted assignments the SRM check counts calls per arm."""
    experiment = make_experiment()
    fill(experiment, days=2)
    report = reports.experiment_report(experiment=experiment, now=NOW)
    assert report["srm"]["unit"] == "calls"
    assert sum(report["srm"]["result"]["observed"]) == 6000


def _feedback(experiment, *, smart_mean: float) -> None:
    """400 feedback scores per arm: the control's around 0.75, the treatment's around
    ``smart_mean``."""
    rng = np.random.default_rng(5)
    for arm_key, mean in (("council", 0.75), ("smart", smart_mean)):
        values = np.clip(rng.normal(mean, 0.05, 400), 0, 1)
        add_signals(experiment, arm_key, source="feedback", values=values)


def test_a_clear_quality_drop_fails_the_guardrail_and_recommends_rollback():
    """Cheaper but 10% worse user feedback on many calls: guardrail failed, rollback."""
    experiment = make_experiment(quality_signal="feedback")
    fill(experiment)
    _feedback(experiment, smart_mean=0.675)
    report = reports.experiment_report(experiment=experiment, now=NOW)
    decision = report["decision"]
    assert decision["status"] == reports.GUARDRAIL_FAILED
    assert decision["rollback_recommended"] is True
    assert decision["failed_guardrails"] == [{"arm": "smart", "guardrail": "quality"}]
    assert any("Rollback recommended" in reason for reason in decision["reasons"])


def test_a_lower_score_level_alone_is_not_a_quality_drop():
    """final_score 10% lower but quality signals healthy: the quality guardrail passes
    (the score level is what the answer says, not how good it is)."""
    experiment = make_experiment()
    fill(experiment, smart={"quality_mean": 67.5})
    healthy_signals(experiment, "smart")
    report = reports.experiment_report(experiment=experiment, now=NOW)
    quality = next(g for g in report["guardrails"] if g["guardrail"] == "quality")
    assert quality["source"] == "agreement" and quality["status"] == "pass"
    score = next(t for t in report["tests"] if t["id"] == "quality:smart")
    assert score["absolute"]["difference"] < 0


def test_a_rise_in_errors_fails_the_error_guardrail():
    """Error rate 1% -> 8%: the error-rate guardrail fails."""
    experiment = make_experiment(sequential=False)
    fill(experiment, smart={"error_rate": 0.08})
    report = reports.experiment_report(experiment=experiment, now=NOW)
    statuses = {g["guardrail"]: g["status"] for g in report["guardrails"]}
    assert statuses["error_rate"] == "fail"
    assert report["decision"]["status"] == reports.GUARDRAIL_FAILED


def test_slower_p95_fails_the_latency_guardrail():
    """Latency 30% slower throughout: the p95 guardrail fails."""
    experiment = make_experiment()
    fill(experiment, smart={"latency_median": 1040.0})
    report = reports.experiment_report(experiment=experiment, now=NOW)
    latency = next(g for g in report["guardrails"] if g["guardrail"] == "latency_p95")
    assert latency["status"] == "fail"
    assert latency["result"]["harm"] == pytest.approx(0.30, abs=0.06)


def test_guardrail_margins_come_from_the_experiment():
    """A 10% feedback drop passes a 20% margin (and fails the default 2%)."""
    experiment = make_experiment(guardrail_quality_drop_pct=20.0, quality_signal="feedback")
    fill(experiment)
    _feedback(experiment, smart_mean=0.675)
    report = reports.experiment_report(experiment=experiment, now=NOW)
    quality = next(g for g in report["guardrails"] if g["guardrail"] == "quality")
    assert quality["margin"] == pytest.approx(0.20)
    assert quality["status"] == "pass"


def test_checklist_reflects_the_success_criteria():
    """The checklist reports the candidate arm's savings, confidence, escalation, errors and
    latency against the guide's thresholds."""
    experiment = make_experiment()
    fill(experiment, smart={"escalation_rate": 0.30, "confidence_mean": 0.7})
    report = reports.experiment_report(experiment=experiment, now=NOW)
    items = {item["key"]: item for item in report["checklist"]}
    assert report["checklist_arm"] == "smart"
    assert items["cost_savings"]["met"] is True
    assert items["cost_savings"]["value"] == pytest.approx(0.8, abs=0.03)
    assert items["avg_confidence"]["met"] is False
    assert items["avg_confidence"]["value"] == pytest.approx(0.7, abs=0.01)
    assert items["escalation_rate"]["met"] is False
    assert items["no_error_increase"]["met"] is True
    assert items["latency_impact"]["met"] is True


def test_report_reads_only_the_current_phase_window():
    """Rollups before the phase started and after `now` are left out."""
    experiment = make_experiment()
    fill(experiment, days=2)
    stale = ArmRollup.objects.filter(experiment_key=experiment.key).first()
    ArmRollup.objects.create(
        bucket_start=START - timedelta(days=3),
        experiment_key=experiment.key,
        arm_key="smart",
        n=999,
    )
    ArmRollup.objects.create(
        bucket_start=NOW + timedelta(days=1), experiment_key=experiment.key, arm_key="smart", n=999
    )
    report = reports.experiment_report(experiment=experiment, now=NOW)
    assert stale is not None
    assert sum(arm["summary"]["calls"] for arm in report["arms"]) == 6000


def test_cumulative_effect_has_one_point_per_day_with_running_min_p():
    """The cumulative series has a point per day; sequential p-values never go up."""
    experiment = make_experiment()
    fill(experiment, days=5)
    report = reports.experiment_report(experiment=experiment, now=NOW)
    points = report["cumulative"]["by_arm"]["smart"]
    assert len(points) == 5 == len(report["cumulative"]["days"])
    assert [p["treatment_n"] for p in points] == sorted(p["treatment_n"] for p in points)
    p_values = [p["p_value"] for p in points]
    assert all(later <= earlier for earlier, later in zip(p_values, p_values[1:], strict=False))


def test_report_query_count_is_fixed():
    """The report is a fixed number of queries, however many rollup rows there are."""
    experiment = make_experiment()
    fill(experiment, days=3)
    assign_units(experiment, {"council": 10, "smart": 10})
    experiment = Experiment.objects.get(pk=experiment.pk)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        reports.experiment_report(experiment=experiment, now=NOW)
    fill(experiment, days=10, seed=11, first_day=3)
    with CaptureQueriesContext(connection) as large:
        reports.experiment_report(experiment=experiment, now=NOW)
    assert len(small) == len(large)


def test_report_query_count_is_pinned(django_assert_num_queries):
    """arms, phase, per-arm sums, per-day sums, histograms, assignments, shadow check, and
    the per-unit sums: 8; quality (loaded with the rest, for the guardrail): calls with
    shadows, coverage, unit-level sums, by day, judge vs feedback: 5."""
    experiment = make_experiment()
    fill(experiment, days=2)
    with django_assert_num_queries(13):
        reports.experiment_report(experiment=experiment, now=NOW)


def test_empty_experiment_reports_no_winner_yet_without_errors():
    """No calls at all: a valid report, no winner yet, tests carry their reason."""
    experiment = make_experiment()
    report = reports.experiment_report(experiment=experiment, now=NOW)
    json.dumps(report, allow_nan=False)
    assert report["decision"]["status"] == reports.NO_WINNER_YET
    cost = next(t for t in report["tests"] if t["metric"] == "cost_per_request")
    assert cost["p_value"] is None and "n >= 2" in cost["error"]


def test_single_arm_experiment_says_what_is_missing():
    """An experiment without a second arm cannot be decided."""
    experiment = make_experiment()
    experiment.arms.filter(key="smart").delete()
    report = reports.experiment_report(experiment=experiment, now=NOW)
    assert report["decision"]["missing"] == ["arms"]


def _recompute_test(test: dict) -> None:
    inputs = test["inputs"]
    alpha = inputs["alpha"]
    if test["family"] == "mean":
        control = stats.MeanStats(**inputs["control"])
        treatment = stats.MeanStats(**inputs["treatment"])
        welch = scipy_stats.ttest_ind_from_stats(
            treatment.mean,
            treatment.variance**0.5,
            treatment.n,
            control.mean,
            control.variance**0.5,
            control.n,
            equal_var=False,
        )
        assert test["absolute"]["p_value"] == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-12)
        assert test["absolute"]["difference"] == pytest.approx(treatment.mean - control.mean)
        relative = stats.relative_difference(control, treatment, alpha=alpha)
        assert test["relative"]["lift"] == pytest.approx(relative.lift, rel=1e-9)
        variance = test["absolute"]["standard_error"] ** 2
    else:
        control = stats.ProportionStats(**inputs["control"])
        treatment = stats.ProportionStats(**inputs["treatment"])
        result = stats.two_proportion_test(control, treatment, alpha=alpha)
        assert test["absolute"]["p_value"] == pytest.approx(result.p_value, rel=1e-9)
        assert test["absolute"]["ci_low"] == pytest.approx(result.ci_low, rel=1e-9)
        variance = result.standard_error**2
    if inputs["sequential"]:
        sequence = stats.confidence_sequence(
            estimate=test["absolute"]["difference"],
            variance=variance,
            n_total=inputs["control"]["n"] + inputs["treatment"]["n"],
            alpha=alpha,
            tuning_n=inputs["tuning_n"],
        )
        assert test["p_value"] == pytest.approx(sequence.p_value, rel=1e-9, abs=1e-300)
        assert test["ci_low"] == pytest.approx(sequence.ci_low, rel=1e-9)


def test_export_round_trip_recomputes_every_number_from_the_file_alone(tmp_path):
    """The exported JSON is versioned and holds what is needed to recompute each test,
    each guardrail, the Holm adjustment, the SRM check and the decision without a database."""
    experiment = make_experiment()
    fill(experiment, days=7)
    assign_units(experiment, {"council": 300, "smart": 300})
    healthy_signals(experiment, "smart")
    _feedback(experiment, smart_mean=0.74)
    text = reports.report_export_json(experiment=experiment, now=NOW)
    data = json.loads(text)
    assert data["schema_version"] == reports.SCHEMA_VERSION
    assert data["settings"]["key"] == experiment.key
    arms = {arm["key"]: arm for arm in data["arms"]}
    for test in data["tests"]:
        assert (
            test["inputs"]["control"]
            == arms[test["control"]]["sufficient_statistics"][test["metric"]]
        )
        assert (
            test["inputs"]["treatment"]
            == arms[test["treatment"]]["sufficient_statistics"][test["metric"]]
        )
        _recompute_test(test)
    primary = [t for t in data["tests"] if t["primary"]]
    assert [t["p_value_adjusted"] for t in primary] == pytest.approx(
        stats.holm_bonferroni([t["p_value"] for t in primary])
    )
    srm = data["srm"]["result"]
    assert srm["p_value"] == pytest.approx(
        scipy_stats.chisquare(srm["observed"], srm["expected"]).pvalue, rel=1e-9
    )
    latency = next(g for g in data["guardrails"] if g["guardrail"] == "latency_p95")
    edges = data["histogram_edges"]["latency_ms"]
    control_q = stats.histogram_quantile_ci(
        latency["inputs"]["control_latency_hist"],
        edges,
        0.95,
        top=data["histogram_edges"]["latency_top_ms"],
    )
    treatment_q = stats.histogram_quantile_ci(
        latency["inputs"]["treatment_latency_hist"],
        edges,
        0.95,
        top=data["histogram_edges"]["latency_top_ms"],
    )
    again = stats.quantile_ratio_noninferiority(
        control_q, treatment_q, margin=latency["margin"], sequential=True
    )
    assert latency["result"]["harm_high"] == pytest.approx(again.harm_high, rel=1e-9)
    quality = next(g for g in data["guardrails"] if g["guardrail"] == "quality")
    again = quality_check(
        source=quality["inputs"]["source"],
        control=RatioSums(**quality["inputs"]["control"]),
        treatment=RatioSums(**quality["inputs"]["treatment"]),
        settings=QualitySettings(**quality["inputs"]["settings"]),
    )
    assert quality["result"]["p_value"] == pytest.approx(again.result["p_value"], rel=1e-9)
    for source, section in data["quality"]["signals"].items():
        check = quality_check(
            source=source,
            control=RatioSums(**section["arms"]["council"]["sums"]),
            treatment=RatioSums(**section["arms"]["smart"]["sums"]),
            settings=QualitySettings(**data["quality"]["settings"]),
        )
        assert check.as_dict() == section["checks"]["smart"]
    assert reports.decide(data) == data["decision"]
    last = data["cumulative"]["by_arm"]["smart"][-1]
    again = reports.compare_metric(
        metric="cost_per_request",
        control=last["control_stats"],
        treatment=last["treatment_stats"],
        alpha=data["settings"]["alpha"],
        sequential=True,
    )
    assert last["ci_low"] == pytest.approx(again["relative_ci_low"], rel=1e-9)
    assert edges == pytest.approx(list(LATENCY_HIST_EDGES_MS))
    assert data["histogram_edges"]["latency_top_ms"] == pytest.approx(LATENCY_HIST_TOP_MS)


def test_export_is_strict_json():
    """No NaN or Infinity in the export, even with degenerate inputs."""
    experiment = make_experiment()
    rng = np.random.default_rng(1)
    add_day(experiment, "council", 0, n=5, rng=rng, error_rate=0.0)
    add_day(experiment, "smart", 0, n=5, rng=rng, error_rate=0.0)
    json.loads(reports.report_export_json(experiment=experiment, now=NOW), parse_constant=_refuse)


def _refuse(name):
    raise AssertionError(f"non-standard JSON constant {name}")


def test_shadow_pairs_get_paired_t_and_wilcoxon():
    """Shadow pairs' treatment-minus-control differences feed a paired t-test equal to
    scipy's ttest_rel and a Wilcoxon test equal to scipy's wilcoxon."""
    experiment = make_experiment()
    arms = {arm.key: arm for arm in experiment.arms.all()}
    rng = np.random.default_rng(3)
    council_scores = rng.normal(75, 8, 30)
    smart_scores = council_scores + rng.normal(-1.0, 2.0, 30)
    for index, (council_score, smart_score) in enumerate(
        zip(council_scores, smart_scores, strict=True)
    ):
        primary_arm, shadow_arm = ("smart", "council") if index % 2 else ("council", "smart")
        scores = {"council": float(council_score), "smart": float(smart_score)}
        common = {
            "status": "success",
            "experiment": experiment,
            "completed_at": START + timedelta(hours=index),
        }
        primary = RoutedCall.objects.create(
            idempotency_key=f"p-{index}",
            arm=arms[primary_arm],
            final_score=scores[primary_arm],
            cost_usd=Decimal("0.01") if primary_arm == "council" else Decimal("0.002"),
            **common,
        )
        shadow = RoutedCall.objects.create(
            idempotency_key=f"s-{index}",
            arm=arms[shadow_arm],
            final_score=scores[shadow_arm],
            is_shadow=True,
            paired_call=primary,
            cost_usd=Decimal("0.01") if shadow_arm == "council" else Decimal("0.002"),
            **common,
        )
        RoutedCall.objects.filter(pk=primary.pk).update(paired_call=shadow)
    from experiments.rollups import rollups_rebuild

    rollups_rebuild()
    report = reports.experiment_report(experiment=experiment, now=NOW)
    quality = report["paired"]["smart"]["quality"]
    expected_t = scipy_stats.ttest_rel(smart_scores, council_scores)
    assert quality["inputs"]["n"] == 30
    assert quality["paired_t"]["p_value"] == pytest.approx(expected_t.pvalue, rel=1e-6)
    assert quality["paired_t"]["mean_difference"] == pytest.approx(
        float(np.mean(smart_scores - council_scores))
    )
    expected_w = scipy_stats.wilcoxon(smart_scores - council_scores)
    assert quality["wilcoxon"]["p_value"] == pytest.approx(expected_w.pvalue, rel=1e-6)
    cost = report["paired"]["smart"]["cost_per_request"]
    assert cost["paired_t"]["mean_difference"] == pytest.approx(-0.008)
