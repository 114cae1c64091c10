"""Training data for the learned router from the platform's own shadow-mode pairs.

In shadow mode a share of an experiment's calls also runs on the other arm, and the two
rows are paired (``RoutedCall.paired_call``). Each finished pair is one labelled example:
the same prompt answered by a "strong" arm and a "weak" arm, with each side's quality
(``final_score`` / 100; an errored call counts as quality 0). That is exactly what
`routing train-router --from-calls --experiment KEY` learns from.

With ``signal`` the two qualities come from quality signals instead of ``final_score``
(which is what an answer says, not how good it is), one extra query:

- ``agreement``: the control's answer is the reference (1.0); the other side's quality is
  its agreement with it;
- ``judge``: the judged side's value (1 win, 0.5 tie, 0 loss) and 1 minus it for the other;
- ``feedback``: only the call a user saw has feedback; its side gets that value and the
  other side its arm's mean feedback in the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.models import Experiment, QualitySignal, RoutedCall
from experiments.selectors import shadow_pairs
from experiments.selectors_quality import quality_sums
from experiments.stats.ratio import ratio_estimate

SIGNALS = ("agreement", "judge", "feedback")


class TrainingDataError(ValueError):
    """The experiment cannot give training pairs (the message says what to do)."""


@dataclass(frozen=True)
class ShadowTrainingPair:
    """One prompt answered by both arms: what the router learns from."""

    prompt: str
    task_type: str
    strong_quality: float
    weak_quality: float
    weak_response: str
    primary_call_id: int
    shadow_call_id: int


def call_prompt(call: RoutedCall) -> str:
    """The prompt text a call was asked (script, text, or the chat messages' contents)."""
    payload = call.request_payload or {}
    for key in ("script", "text", "prompt"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value
    messages = payload.get("messages") or []
    parts = [
        str(message.get("content") or "")
        for message in messages
        if isinstance(message, dict) and message.get("role", "user") != "assistant"
    ]
    return "\n".join(part for part in parts if part)


def call_quality(call: RoutedCall) -> float | None:
    """Quality in [0, 1]: final_score / 100; an errored call is 0; None when unknown."""
    if call.status == RoutedCall.Status.ERROR:
        return 0.0
    if call.final_score is None:
        return None
    return min(1.0, max(0.0, call.final_score / 100.0))


def call_response(call: RoutedCall) -> str:
    result = call.result or {}
    for key in ("response", "feedback"):
        value = result.get(key)
        if isinstance(value, str):
            return value
    return ""


def training_arms(
    *, experiment: Experiment, strong_arm: str | None = None, weak_arm: str | None = None
) -> tuple[str, str]:
    """(strong, weak) arm keys: as named, else the control arm is the strong one."""
    arms = list(experiment.arms.all())
    keys = [arm.key for arm in arms]
    for name in (strong_arm, weak_arm):
        if name is not None and name not in keys:
            raise TrainingDataError(
                f"experiment {experiment.key!r} has no arm {name!r} (arms: {', '.join(keys)})"
            )
    if strong_arm is None:
        control = next((arm.key for arm in arms if arm.is_control and arm.key != weak_arm), None)
        strong_arm = control or next((key for key in keys if key != weak_arm), None)
    if weak_arm is None:
        weak_arm = next((key for key in keys if key != strong_arm), None)
    if strong_arm is None or weak_arm is None or strong_arm == weak_arm:
        raise TrainingDataError(
            f"experiment {experiment.key!r} needs two different arms to train on "
            f"(arms: {', '.join(keys) or 'none'}); name them with --strong and --weak"
        )
    return strong_arm, weak_arm


def _signal_values(experiment: Experiment, signal: str) -> tuple[dict[int, float], dict]:
    """(value by call id, mean by arm key) of the experiment's ``signal`` signals."""
    values = dict(
        QualitySignal.objects.filter(
            experiment=experiment, source=signal, status=QualitySignal.Status.OK
        ).values_list("call_id", "value")
    )
    means = {}
    if signal == "feedback":
        for arm_key, sums in quality_sums(experiment=experiment, source=signal).items():
            means[arm_key] = ratio_estimate(sums).value
    return values, means


def signal_qualities(
    signal: str, strong: RoutedCall, weak: RoutedCall, values: dict[int, float], arm_means: dict
) -> tuple[float | None, float | None]:
    """(strong, weak) quality of a pair from ``signal`` (module docstring); None when the
    pair has no such signal."""
    if signal == "feedback":
        if strong.pk not in values and weak.pk not in values:
            return None, None
        strong_value, weak_value = (
            values.get(call.pk, arm_means.get(getattr(call.arm, "key", None)))
            for call in (strong, weak)
        )
        return strong_value, weak_value
    for side in (strong, weak):
        if side.pk in values:
            value = values[side.pk]
            counterpart = 1.0 if signal == "agreement" else 1.0 - value
            return (value, counterpart) if side is strong else (counterpart, value)
    return None, None


def shadow_training_pairs(
    *, experiment: Experiment, strong_arm: str, weak_arm: str, signal: str | None = None
) -> tuple[list[ShadowTrainingPair], int]:
    """The experiment's finished shadow pairs as training examples (one query; one more
    with ``signal``, whose values label the pairs instead of final_score).

    Returns (pairs, skipped): pairs whose prompt or either side's quality is unknown
    (e.g. execute calls without a score, or pairs without the signal) are skipped and
    counted.
    """
    if signal is not None and signal not in SIGNALS:
        raise TrainingDataError(f"unknown signal {signal!r}: use one of {', '.join(SIGNALS)}")
    values, arm_means = _signal_values(experiment, signal) if signal else ({}, {})
    pairs: list[ShadowTrainingPair] = []
    skipped = 0
    for primary in shadow_pairs(experiment=experiment):
        shadow = primary.paired_call
        by_arm = {
            getattr(primary.arm, "key", None): primary,
            getattr(shadow.arm, "key", None): shadow,
        }
        strong_call, weak_call = by_arm.get(strong_arm), by_arm.get(weak_arm)
        if strong_call is None or weak_call is None or strong_call is weak_call:
            skipped += 1
            continue
        prompt = call_prompt(primary)
        if signal:
            strong_quality, weak_quality = signal_qualities(
                signal, strong_call, weak_call, values, arm_means
            )
        else:
            strong_quality, weak_quality = call_quality(strong_call), call_quality(weak_call)
        if not prompt.strip() or strong_quality is None or weak_quality is None:
            skipped += 1
            continue
        pairs.append(
            ShadowTrainingPair(
                prompt=prompt,
                task_type=primary.task_type or "analysis",
                strong_quality=strong_quality,
                weak_quality=weak_quality,
                weak_response=call_response(weak_call),
                primary_call_id=primary.pk,
                shadow_call_id=shadow.pk,
            )
        )
    return pairs, skipped
