"""Quality signals: how good a routed call's answer was, measured apart from its content.

``final_score`` is what the answer *says* (the council's score of the user's script); a
:class:`QualitySignal` is how *good* the answer was, from one of three sources:

- ``agreement``: a shadow pair's treatment answer compared with the control's (the
  reference);
- ``judge``: an LLM judge's pairwise verdict on a shadow pair (1 win, 0.5 tie, 0 loss for
  the call it is attached to), or a judge error (no value);
- ``feedback``: a user's score or thumbs, posted to the API.

One signal per call and source, so recording twice changes nothing. A signal carries its
call's experiment and phase (copied when it is saved, indexed), so an experiment's signals
are read as one index range, not by walking every signal to look up its call.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from experiments.models.calls import RoutedCall
from experiments.models.experiment import Experiment, Phase


class QualitySignal(models.Model):
    class Source(models.TextChoices):
        AGREEMENT = "agreement", "Agreement with the control (reference) answer"
        JUDGE = "judge", "LLM judge (pairwise, order swapped)"
        FEEDBACK = "feedback", "User feedback"

    class Status(models.TextChoices):
        OK = "ok", "Measured"
        ERROR = "error", "Could not be measured"

    call = models.ForeignKey(RoutedCall, on_delete=models.CASCADE, related_name="quality_signals")
    # The call's own, copied on save (a call's experiment and phase never change).
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        editable=False,
        db_index=False,  # the composite index below serves it
        on_delete=models.SET_NULL,
        related_name="quality_signals",
    )
    phase = models.ForeignKey(
        Phase,
        null=True,
        blank=True,
        editable=False,
        db_index=False,  # the composite index below serves it
        on_delete=models.SET_NULL,
        related_name="quality_signals",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    value = models.FloatField(
        null=True, blank=True, help_text="0-1, higher is better; empty for an error."
    )
    detail = models.JSONField(default=dict, blank=True)
    judge_model = models.CharField(max_length=128, blank=True)
    prompt_version = models.CharField(max_length=32, blank=True)
    cost_usd = models.DecimalField(
        max_digits=16,
        decimal_places=10,
        default=Decimal("0"),
        help_text="What measuring cost (the judge's own calls).",
    )
    simulated = models.BooleanField(
        default=False, help_text="Measured by the simulated provider, not a real model."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["call", "source"], name="quality_signal_call_source"),
            models.CheckConstraint(
                condition=(
                    models.Q(status="ok", value__gte=0, value__lte=1)
                    | models.Q(status="error", value__isnull=True)
                ),
                name="quality_signal_value_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["source", "created_at"], name="quality_source_time"),
            models.Index(fields=["experiment", "status"], name="quality_experiment"),
            models.Index(fields=["phase", "status"], name="quality_phase"),
        ]

    def __str__(self) -> str:
        shown = "error" if self.value is None else f"{self.value:.3f}"
        return f"{self.source} {shown} on call {self.call_id}"

    def save(self, *args, **kwargs) -> None:
        if self._state.adding and self.call_id is not None:
            self.experiment_id, self.phase_id = self.call.experiment_id, self.call.phase_id
        super().save(*args, **kwargs)
