"""Shadow-mode pairs as training data for the learned router."""

from __future__ import annotations

from itertools import count

import pytest

from experiments.models import RoutedCall
from experiments.selectors_training import (
    TrainingDataError,
    call_prompt,
    shadow_training_pairs,
    training_arms,
)
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db
_keys = count()


def make_pairs(n: int, *, experiment=None):
    """`n` finished pairs: the smart_routing call (primary) and its original_council shadow.
    Long prompts are the ones where the cheap arm scores badly."""
    experiment = experiment or make_experiment(shadow_percentage=100.0)
    arms = {arm.key: arm for arm in experiment.arms.all()}
    for index in range(n):
        hard = index % 2 == 0
        prompt = ("Analyse every clause of this contract in depth. " * 8) if hard else "Rate: ok?"
        primary = RoutedCall.objects.create(
            idempotency_key=f"train-{next(_keys)}",
            kind=RoutedCall.Kind.EVALUATE,
            status=RoutedCall.Status.SUCCESS,
            experiment=experiment,
            arm=arms["smart_routing"],
            task_type="analysis",
            request_payload={"script": prompt},
            final_score=40.0 if hard else 90.0,
            result={"feedback": "short"},
        )
        shadow = RoutedCall.objects.create(
            idempotency_key=f"train-{next(_keys)}",
            kind=RoutedCall.Kind.EVALUATE,
            status=RoutedCall.Status.SUCCESS,
            experiment=experiment,
            arm=arms["original_council"],
            is_shadow=True,
            paired_call=primary,
            request_payload={"script": prompt},
            final_score=85.0,
        )
        primary.paired_call = shadow
        primary.save(update_fields=["paired_call"])
    return experiment


def test_pairs_carry_prompt_and_both_qualities(django_assert_num_queries):
    """Each pair: the prompt, strong (control) and weak quality in [0, 1], in one query."""
    experiment = make_pairs(4)
    with django_assert_num_queries(1):
        pairs, skipped = shadow_training_pairs(
            experiment=experiment, strong_arm="original_council", weak_arm="smart_routing"
        )
    assert skipped == 0 and len(pairs) == 4
    assert pairs[0].strong_quality == 0.85 and pairs[0].weak_quality == 0.4
    assert pairs[0].prompt.startswith("Analyse") and pairs[0].weak_response == "short"


def test_errors_count_as_zero_and_unscored_pairs_are_skipped():
    """An errored call has quality 0; a pair without a score is skipped and counted."""
    experiment = make_pairs(2)
    first = RoutedCall.objects.filter(experiment=experiment, is_shadow=False).order_by("id")
    failing = first[0]
    failing.status = RoutedCall.Status.ERROR
    failing.save(update_fields=["status"])
    unscored = first[1]
    unscored.final_score = None
    unscored.save(update_fields=["final_score"])
    pairs, skipped = shadow_training_pairs(
        experiment=experiment, strong_arm="original_council", weak_arm="smart_routing"
    )
    assert [pair.weak_quality for pair in pairs] == [0.0]
    assert skipped == 1


def test_default_arms_and_unknown_arm():
    """The control arm is the strong one by default; an unknown arm lists the arms."""
    experiment = make_experiment()
    assert training_arms(experiment=experiment) == ("original_council", "smart_routing")
    assert training_arms(experiment=experiment, strong_arm="smart_routing") == (
        "smart_routing",
        "original_council",
    )
    with pytest.raises(TrainingDataError, match="arms: original_council, smart_routing"):
        training_arms(experiment=experiment, weak_arm="premium")


def test_call_prompt_reads_every_payload_shape():
    """Script, text, or the non-assistant chat messages."""
    assert call_prompt(RoutedCall(request_payload={"script": "S"})) == "S"
    assert call_prompt(RoutedCall(request_payload={"text": "T"})) == "T"
    chat = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "x"},
        ]
    }
    assert call_prompt(RoutedCall(request_payload=chat)) == "be brief\nhi"


def _signal_on_weak(experiment, source: str, value_of) -> None:
    """A ``source`` signal on each pair's smart_routing call, valued by its prompt."""
    from experiments.models import QualitySignal

    for call in RoutedCall.objects.filter(experiment=experiment, is_shadow=False):
        QualitySignal.objects.create(
            call=call, source=source, value=value_of(call.request_payload["script"])
        )


@pytest.mark.parametrize(
    ("source", "strong", "weak"),
    [("agreement", 1.0, 0.3), ("judge", 0.7, 0.3), ("feedback", 0.5, 0.3)],
)
def test_pairs_are_labelled_by_the_chosen_signal(source, strong, weak):
    """agreement: the control is the reference (1.0); judge: the other side gets 1 - value;
    feedback: the side without feedback (the shadow) gets its arm's mean feedback."""
    from experiments.models import QualitySignal

    experiment = make_pairs(4)
    _signal_on_weak(experiment, source, lambda prompt: 0.3 if prompt.startswith("Analyse") else 0.7)
    if source == "feedback":
        seen = RoutedCall.objects.create(
            idempotency_key="council-seen",
            status=RoutedCall.Status.SUCCESS,
            experiment=experiment,
            arm=experiment.arms.get(key="original_council"),
        )
        QualitySignal.objects.create(call=seen, source="feedback", value=0.5)
    pairs, skipped = shadow_training_pairs(
        experiment=experiment,
        strong_arm="original_council",
        weak_arm="smart_routing",
        signal=source,
    )
    assert skipped == 0 and len(pairs) == 4
    assert (pairs[0].strong_quality, pairs[0].weak_quality) == (strong, weak)


def test_pairs_without_the_signal_are_skipped_not_guessed():
    """No judge verdicts yet: no pair is labelled by the judge."""
    experiment = make_pairs(4)
    pairs, skipped = shadow_training_pairs(
        experiment=experiment,
        strong_arm="original_council",
        weak_arm="smart_routing",
        signal="judge",
    )
    assert (pairs, skipped) == ([], 4)
