"""Training data for the learned router from the platform's own shadow-mode pairs.

In shadow mode a share of an experiment's calls also runs on the other arm, and the two
rows are paired (``RoutedCall.paired_call``). Each finished pair is one labelled example:
the same prompt answered by a "strong" arm and a "weak" arm, with each side's quality
(``final_score`` / 100; an errored call counts as quality 0). That is exactly what
`routing train-router --from-calls --experiment KEY` learns from.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.models import Experiment, RoutedCall
from experiments.selectors import shadow_pairs


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


def shadow_training_pairs(
    *, experiment: Experiment, strong_arm: str, weak_arm: str
) -> tuple[list[ShadowTrainingPair], int]:
    """The experiment's finished shadow pairs as training examples (one query).

    Returns (pairs, skipped): pairs whose prompt or either side's quality is unknown
    (e.g. execute calls without a score) are skipped and counted.
    """
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
