"""Agreement of a treatment's answer with the control's (the reference), pure.

- Script evaluations: ``1 - |score_t - score_c| / 100`` is the value; whether the two
  verdicts agree is reported beside it.
- Executions and chats: exact match (case, spaces and end punctuation ignored) on
  classification-style tasks; other tasks have no single right answer, so they are left
  to the judge (None).
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION_TASKS = frozenset({"classification"})


@dataclass(frozen=True)
class Agreement:
    value: float
    detail: dict


def evaluation_agreement(
    *,
    control_score: float | None,
    control_verdict: str,
    treatment_score: float | None,
    treatment_verdict: str,
) -> Agreement | None:
    """Agreement of two script evaluations (None without the control's score)."""
    if control_score is None:
        return None
    if treatment_score is None:
        return Agreement(0.0, {"method": "score", "reason": "the treatment gave no score"})
    difference = abs(float(treatment_score) - float(control_score))
    value = max(0.0, 1.0 - difference / 100.0)
    return Agreement(
        value,
        {
            "method": "score",
            "score_agreement": value,
            "score_difference": difference,
            "verdict_agreement": bool(control_verdict) and control_verdict == treatment_verdict,
            "control_score": control_score,
            "treatment_score": treatment_score,
            "control_verdict": control_verdict,
            "treatment_verdict": treatment_verdict,
        },
    )


def _normalised(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .!?;:\"'")


def execution_agreement(
    *, task_type: str, control_text: str, treatment_text: str
) -> Agreement | None:
    """Exact-match agreement on classification-style tasks; None otherwise (the judge's)."""
    if task_type not in CLASSIFICATION_TASKS or not control_text.strip():
        return None
    match = _normalised(control_text) == _normalised(treatment_text)
    return Agreement(1.0 if match else 0.0, {"method": "exact_match", "task_type": task_type})
