"""Quality signals on live traffic: agreement and the judge on shadow pairs, feedback, and
the quality guardrail that a score-inflating cheap arm can no longer pass."""

from __future__ import annotations

import pytest

from experiments import jobs, reports, selectors_quality, stats
from experiments.models import QualitySignal, RoutedCall
from experiments.quality import evaluation_agreement, execution_agreement
from experiments.services import routed_call_enqueue
from experiments.services.calls import execution as calls_execution
from experiments.services.quality import (
    FeedbackError,
    feedback_record,
    judge_pair_run,
    quality_signal_record,
)
from experiments.stats.ratio import RatioSums
from routing_platform.engine.errors import ProviderRateLimitError
from routing_platform.engine.providers.base import CompletionResponse
from routing_platform.engine.providers.simulated import SimulatedProvider
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db

SCRIPTS = [
    "Hook: stop scrolling. Today I show you the three habits that doubled my savings, "
    f"starting with habit number {index}. Follow for part two."
    for index in range(40)
]


def test_evaluation_agreement_reports_score_and_verdict_agreement():
    """1 - |difference| / 100 is the value; the verdicts' agreement is reported beside it."""
    agreement = evaluation_agreement(
        control_score=70,
        control_verdict="approved",
        treatment_score=100,
        treatment_verdict="approved",
    )
    assert agreement.value == pytest.approx(0.70)
    assert agreement.detail["verdict_agreement"] is True
    assert (
        evaluation_agreement(
            control_score=None, control_verdict="", treatment_score=50, treatment_verdict=""
        )
        is None
    )


def test_execution_agreement_is_exact_match_on_classification_only():
    """Classification answers match ignoring case and end punctuation; open tasks are the
    judge's (None)."""
    same = execution_agreement(
        task_type="classification", control_text="Positive.", treatment_text=" positive"
    )
    other = execution_agreement(
        task_type="classification", control_text="positive", treatment_text="negative"
    )
    assert (same.value, other.value) == (1.0, 0.0)
    assert execution_agreement(task_type="analysis", control_text="a", treatment_text="a") is None


def _pairs(experiment, *, count: int = 40) -> list[RoutedCall]:
    """``count`` evaluate calls, each with its shadow twin, run through the jobs (sync)."""
    primaries = [
        routed_call_enqueue(
            kind="evaluate",
            request_payload={"script": SCRIPTS[index], "niche": "finance"},
            unit_id=f"unit-{index // 2}",
            experiment=experiment,
            shadow_share=1.0,
            dispatch=False,
        )
        for index in range(count)
    ]
    for primary in primaries:
        jobs.routed_call_execute(primary.pk)
        jobs.routed_call_execute(primary.paired_call_id)
    return primaries


@pytest.fixture
def inflating_arm(monkeypatch):
    """The treatment (smart_routing) arm is a cheap model that scores every script 100;
    the control runs the simulated council as it is."""
    real_run = calls_execution.run_engine

    def run(call):
        result = real_run(call)
        if call.strategy == "smart_routing":
            result = {**result, "final_score": 100.0, "verdict": "approved"}
        return result

    monkeypatch.setattr(calls_execution, "run_engine", run)


def _quality_guardrail(experiment) -> dict:
    report = reports.experiment_report(experiment=experiment)
    return report, next(g for g in report["guardrails"] if g["guardrail"] == "quality")


def test_a_cheap_arm_that_inflates_scores_fails_the_quality_guardrail(
    inflating_arm, settings, fake_redis
):
    """Scores of 100 for every script look like better quality to final_score (its
    non-inferiority test passes: what the guardrail did before), but the agreement with the
    control's answers and the judge's verdicts both fail the quality guardrail."""
    settings.QUALITY_MIN_SIGNALS = 20
    experiment = make_experiment(shadow_percentage=100)
    # Fixed-horizon intervals: 20 units are far too few for always-valid ones.
    experiment.sequential_testing = False
    experiment.save(update_fields=["sequential_testing"])
    primaries = _pairs(experiment)

    report, guardrail = _quality_guardrail(experiment)
    score = next(t for t in report["tests"] if t["id"] == "quality:smart_routing")
    # The score level is tested per unit (RatioSums of final_score): the old final_score
    # guardrail, non-inferiority of the score, passes.
    assert score["inputs"]["analysis_unit"] == "unit"
    old_guardrail = stats.noninferiority.relative_ratio_noninferiority(
        RatioSums(**score["inputs"]["control"]),
        RatioSums(**score["inputs"]["treatment"]),
        margin=0.02,
    )
    assert old_guardrail.status == "pass"
    assert guardrail["source"] == "agreement"
    assert guardrail["status"] == "fail", guardrail
    assert report["decision"]["status"] == reports.GUARDRAIL_FAILED
    coverage = report["quality"]["signals"]["agreement"]["arms"]["smart_routing"]
    # Each of the 40 pairs has one treatment call (served or shadow), and each has one.
    assert coverage["signals"] == coverage["calls"] == 40 and coverage["coverage"] == 1.0

    treatments = QualitySignal.objects.filter(source="agreement").values_list("call_id", flat=True)
    assert len(treatments) == 40
    for call_id in treatments:
        signal = judge_pair_run(treatment_call_id=call_id)
        assert signal.simulated and "simulated" in signal.detail["simulated"]
        assert signal.prompt_version == "pairwise-v1" and signal.cost_usd > 0
    experiment.quality_signal = "judge"
    experiment.save(update_fields=["quality_signal"])
    report, guardrail = _quality_guardrail(experiment)
    assert guardrail["source"] == "judge"
    assert guardrail["status"] == "fail", guardrail
    judge = report["quality"]["signals"]["judge"]
    assert judge["arms"]["smart_routing"]["signals"] == 40
    assert report["quality"]["measuring_cost_usd"]["judge"] > 0
    assert len(primaries) == 40


def test_agreement_is_recorded_once_when_the_pair_completes(fake_engine, fake_redis):
    """The first finished side records nothing; the second records the treatment's
    agreement; running the job again records nothing new."""
    experiment = make_experiment(shadow_percentage=100)
    primary = routed_call_enqueue(
        kind="evaluate",
        request_payload={"script": SCRIPTS[0]},
        unit_id="u-1",
        experiment=experiment,
        dispatch=False,
    )
    jobs.routed_call_execute(primary.pk)
    assert not QualitySignal.objects.exists()
    jobs.routed_call_execute(primary.paired_call_id)
    jobs.routed_call_execute(primary.paired_call_id)
    [signal] = QualitySignal.objects.all()
    assert signal.source == "agreement" and signal.value == 1.0
    assert signal.call.arm.is_control is False
    assert signal.detail["reference_call_id"] != signal.call_id


def test_a_completed_pair_queues_its_judge_job_on_the_judge_queue(
    fake_engine, fake_redis, settings, django_capture_on_commit_callbacks
):
    """After commit, one job per pair on the "judge" queue, named after the treatment call."""
    import django_rq

    settings.QUALITY_JUDGE_SHARE = 1.0
    experiment = make_experiment(shadow_percentage=100)
    primary = routed_call_enqueue(
        kind="evaluate",
        request_payload={"script": SCRIPTS[1]},
        unit_id="u-2",
        experiment=experiment,
        dispatch=False,
    )
    with django_capture_on_commit_callbacks(execute=True):
        jobs.routed_call_execute(primary.pk)
        jobs.routed_call_execute(primary.paired_call_id)
    treatment = QualitySignal.objects.get(source="agreement").call_id
    assert django_rq.get_queue("judge").job_ids == [f"judge-{treatment}"]


def test_an_unparseable_judge_answer_is_a_judge_error_not_a_verdict(
    fake_engine, fake_redis, monkeypatch
):
    """The signal says error, has no value, keeps the answer, and counts in no win rate."""

    async def garble(self, request):
        return CompletionResponse(text="Both are fine I guess", model=request.model, provider="s")

    monkeypatch.setattr(SimulatedProvider, "complete", garble)
    experiment = make_experiment(shadow_percentage=100)
    [primary] = _pairs(experiment, count=1)
    treatment = QualitySignal.objects.get(source="agreement").call
    signal = judge_pair_run(treatment_call_id=treatment.pk)
    assert signal.status == "error" and signal.value is None
    assert "no verdict" in signal.detail["error"]
    assert selectors_quality.quality_sums(experiment=experiment, source="judge") == {}
    assert judge_pair_run(treatment_call_id=treatment.pk).pk == signal.pk
    assert primary.pk


def test_a_passing_judge_failure_is_retried_not_recorded(
    fake_engine, fake_redis, monkeypatch, settings
):
    """A rate-limited judge raises (RQ retries the job); a judge that cannot work (an
    unknown model) is recorded as a judge error."""

    async def limited(self, request):
        raise ProviderRateLimitError("simulated", 429, "slow down")

    experiment = make_experiment(shadow_percentage=100)
    _pairs(experiment, count=1)
    treatment = QualitySignal.objects.get(source="agreement").call
    with monkeypatch.context() as patch:
        patch.setattr(SimulatedProvider, "complete", limited)
        with pytest.raises(ProviderRateLimitError):
            judge_pair_run(treatment_call_id=treatment.pk)
    assert not QualitySignal.objects.filter(source="judge").exists()
    settings.QUALITY_JUDGE_MODEL = "no-such-judge"
    signal = judge_pair_run(treatment_call_id=treatment.pk)
    assert signal.status == "error" and "no-such-judge" in signal.detail["error"]


def test_a_signal_is_recorded_once_per_call_and_source(fake_engine):
    """Recording the same call and source twice keeps the first value."""
    experiment = make_experiment()
    call = RoutedCall.objects.create(idempotency_key="k1", experiment=experiment, status="success")
    first, created = quality_signal_record(call=call, source="feedback", value=0.2)
    again, created_again = quality_signal_record(call=call, source="feedback", value=0.9)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.value == 0.2


@pytest.mark.parametrize(
    ("score", "thumbs", "message"),
    [
        (1.5, None, "between 0 and 1"),
        (-0.1, None, "between 0 and 1"),
        (None, None, "exactly one"),
        (0.5, "up", "exactly one"),
        (None, "sideways", '"up" or "down"'),
    ],
)
def test_bad_feedback_is_refused_and_changes_nothing(score, thumbs, message):
    """Out-of-range scores, both or neither of score and thumbs: a clear error, no row."""
    call = RoutedCall.objects.create(idempotency_key="k2", status="success")
    with pytest.raises(FeedbackError, match=message):
        feedback_record(call=call, score=score, thumbs=thumbs)
    assert not QualitySignal.objects.exists()


def test_feedback_on_a_shadow_call_is_refused():
    """A shadow call was never shown to a user: no feedback on it."""
    call = RoutedCall.objects.create(idempotency_key="k3", status="success", is_shadow=True)
    with pytest.raises(FeedbackError, match="shadow call"):
        feedback_record(call=call, score=None, thumbs="up")
