"""Writes of quality signals: agreement and the judge on shadow pairs, user feedback.

When both calls of a shadow pair have finished (``quality_on_call_finished``, called by
the routed-call job), the treatment call gets an ``agreement`` signal against the
control's answer, and for ``QUALITY_JUDGE_SHARE`` of the pairs (a deterministic hash of
the pair) a ``judge`` job is queued on the "judge" queue after commit. Users post
``feedback``. Every signal is recorded once per call and source: a second record
returns the first one unchanged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import django_rq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rq import Retry

from experiments.bucketing import in_sample
from experiments.models import QualitySignal, RoutedCall
from experiments.quality import Agreement, evaluation_agreement, execution_agreement
from experiments.selectors_training import call_prompt, call_response
from experiments.services.calls import run_coroutine
from routing_platform import runtime
from routing_platform.engine.council import evaluation_messages
from routing_platform.engine.errors import RoutingError
from routing_platform.engine.judge import JUDGE_PROMPT_VERSION, judge_pair

logger = logging.getLogger(__name__)

Source = QualitySignal.Source
JUDGE_QUEUE = "judge"
#: The judge job, enqueued by its import path: the job module imports this one.
JUDGE_JOB = "experiments.jobs_quality.judge_pair_run"
JUDGE_JOB_TIMEOUT_S = 300
JUDGE_MAX_RETRIES = 2
_FINISHED = (RoutedCall.Status.SUCCESS, RoutedCall.Status.ERROR)


class FeedbackError(ValueError):
    """Feedback that cannot be recorded (the message says why; the API answers 400)."""


def quality_signal_record(
    *,
    call: RoutedCall,
    source: str,
    value: float | None,
    detail: dict | None = None,
    status: str = QualitySignal.Status.OK,
    judge_model: str = "",
    prompt_version: str = "",
    cost_usd: Decimal = Decimal("0"),
    simulated: bool = False,
) -> tuple[QualitySignal, bool]:
    """Record ``call``'s signal of ``source`` once: (signal, created). A signal already
    recorded for the call and source is returned unchanged."""
    existing = QualitySignal.objects.filter(call=call, source=source).first()
    if existing is not None:
        return existing, False
    signal = QualitySignal(
        call=call,
        source=source,
        status=status,
        value=value,
        detail=json.loads(json.dumps(detail or {}, default=str)),
        judge_model=judge_model[:128],
        prompt_version=prompt_version[:32],
        cost_usd=cost_usd,
        simulated=simulated,
    )
    signal.full_clean(exclude=["call"], validate_unique=False)
    try:
        with transaction.atomic():
            signal.save()
    except IntegrityError:
        # A concurrent record of the same call and source won; return it.
        return QualitySignal.objects.get(call=call, source=source), False
    return signal, True


# --- Shadow pairs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShadowPair:
    """The two finished calls of a shadow pair: the control's is the reference."""

    control: RoutedCall
    treatment: RoutedCall


def shadow_pair_of(call: RoutedCall) -> ShadowPair | None:
    """The finished pair ``call`` belongs to, control first; None while a side runs, or
    when neither side is the control arm."""
    if not call.paired_call_id:
        return None
    calls = list(
        RoutedCall.objects.select_related("arm")
        .filter(pk__in=(call.pk, call.paired_call_id), status__in=_FINISHED)
        .order_by("id")
    )
    controls = [c for c in calls if c.arm is not None and c.arm.is_control]
    if len(calls) != 2 or len(controls) != 1:
        return None
    treatment = next(c for c in calls if c is not controls[0])
    return ShadowPair(control=controls[0], treatment=treatment)


def _pair_agreement(pair: ShadowPair) -> Agreement | None:
    control, treatment = pair.control, pair.treatment
    if control.status != RoutedCall.Status.SUCCESS:
        return None  # no reference answer
    if treatment.status != RoutedCall.Status.SUCCESS:
        return Agreement(0.0, {"method": "error", "reason": "the treatment call failed"})
    if control.kind == RoutedCall.Kind.EVALUATE:
        return evaluation_agreement(
            control_score=control.final_score,
            control_verdict=control.verdict,
            treatment_score=treatment.final_score,
            treatment_verdict=treatment.verdict,
        )
    return execution_agreement(
        task_type=control.task_type,
        control_text=call_response(control),
        treatment_text=call_response(treatment),
    )


def shadow_pair_agreement(*, pair: ShadowPair) -> QualitySignal | None:
    """Record the treatment's agreement with the control's answer (None when there is no
    reference, or the task is left to the judge)."""
    agreement = _pair_agreement(pair)
    if agreement is None:
        return None
    detail = {**agreement.detail, "reference_call_id": pair.control.pk}
    signal, _ = quality_signal_record(
        call=pair.treatment, source=Source.AGREEMENT, value=agreement.value, detail=detail
    )
    return signal


def _in_judge_sample(pair: ShadowPair) -> bool:
    share = float(getattr(settings, "QUALITY_JUDGE_SHARE", 0.0))
    return share > 0 and in_sample(
        seed="judge", unit_id=str(pair.treatment.idempotency_key), share=share
    )


def _enqueue_judge(treatment_call_id: int) -> None:
    """Put the judge job of ``treatment_call_id`` on the "judge" queue (one job per pair: its
    id names the call)."""
    try:
        django_rq.get_queue(JUDGE_QUEUE).enqueue(
            JUDGE_JOB,
            treatment_call_id,
            job_id=f"judge-{treatment_call_id}",
            job_timeout=JUDGE_JOB_TIMEOUT_S,
            retry=Retry(max=JUDGE_MAX_RETRIES),
            result_ttl=600,
            failure_ttl=7 * 24 * 3600,
        )
    except Exception as err:  # redis.ConnectionError, TimeoutError, ...
        # The pair stays unjudged (its coverage shows it); the call itself is recorded.
        logger.warning("judge job for call %s not enqueued: %s", treatment_call_id, err)


JUDGE_QUEUED, JUDGE_INLINE, JUDGE_OFF = "queue", "inline", "off"


def quality_on_call_finished(*, call: RoutedCall, judge: str = JUDGE_QUEUED) -> ShadowPair | None:
    """After a call finished: if its shadow pair is complete, record the agreement and,
    for the judged share, queue the judge after commit (``judge="queue"``), run it now
    (``"inline"``: no worker, e.g. ``routing simulate --sync``) or not (``"off"``).
    Returns the pair, if complete."""
    if not call.paired_call_id or call.status not in _FINISHED:
        return None
    pair = shadow_pair_of(call)
    if pair is None:
        return None
    shadow_pair_agreement(pair=pair)
    judged = pair.control.status == RoutedCall.Status.SUCCESS and _in_judge_sample(pair)
    if judged and judge == JUDGE_QUEUED:
        transaction.on_commit(partial(_enqueue_judge, pair.treatment.pk))
    elif judged and judge == JUDGE_INLINE:
        judge_pair_run(treatment_call_id=pair.treatment.pk)
    return pair


# --- The judge ------------------------------------------------------------------------------


def _judge_question(call: RoutedCall) -> str:
    if call.kind == RoutedCall.Kind.EVALUATE:
        payload = call.request_payload or {}
        niche = payload.get("niche") or "general"
        return evaluation_messages(payload.get("script") or "", niche)[-1]["content"]
    return call_prompt(call)


def _judge_answer(call: RoutedCall) -> str:
    if call.status != RoutedCall.Status.SUCCESS:
        return f"(no answer: the call failed with {call.error_type or 'an error'})"
    if call.kind == RoutedCall.Kind.EVALUATE:
        result = call.result or {}
        return json.dumps(
            {
                "score": call.final_score,
                "verdict": call.verdict,
                "feedback": result.get("feedback") or "",
            }
        )
    return call_response(call)


def _judge_outcome(pair: ShadowPair):
    """Run the judge on the pair (both orders) with the configured judge model."""
    pool = runtime.provider_pool()
    spec = pool.catalog.get(settings.QUALITY_JUDGE_MODEL)
    price_overrides = runtime.router_config().price_overrides

    async def judge(spec, provider):
        return await judge_pair(
            provider=provider,
            spec=spec,
            question=_judge_question(pair.control),
            treatment_answer=_judge_answer(pair.treatment),
            control_answer=_judge_answer(pair.control),
            price_overrides=price_overrides,
        )

    return run_coroutine(pool.call_model(spec, judge)), pool.simulated


def judge_pair_run(*, treatment_call_id: int) -> QualitySignal | None:
    """The judge job's body: judge a complete pair once and record the verdict, or the
    judge's error (an unparseable answer, a judge call that cannot succeed): never as a
    verdict. A retryable provider error propagates, so RQ runs the job again."""
    treatment = RoutedCall.objects.filter(pk=treatment_call_id).first()
    if treatment is None:
        return None
    existing = QualitySignal.objects.filter(call=treatment, source=Source.JUDGE).first()
    if existing is not None:
        return existing
    pair = shadow_pair_of(treatment)
    if pair is None or pair.treatment.pk != treatment.pk:
        return None
    common = {
        "call": pair.treatment,
        "source": Source.JUDGE,
        "judge_model": settings.QUALITY_JUDGE_MODEL,
        "prompt_version": JUDGE_PROMPT_VERSION,
    }
    try:
        outcome, simulated = _judge_outcome(pair)
    except RoutingError as err:
        if getattr(err, "retryable", False):
            raise  # a passing failure (rate limit, timeout): RQ retries the job
        signal, _ = quality_signal_record(
            **common,
            value=None,
            status=QualitySignal.Status.ERROR,
            detail={"error": f"{type(err).__name__}: {err}", "reference_call_id": pair.control.pk},
        )
        return signal
    detail: dict[str, Any] = {**outcome.detail(), "reference_call_id": pair.control.pk}
    if simulated:
        detail["simulated"] = "verdict of the simulated provider, not of a real model"
    signal, _ = quality_signal_record(
        **common,
        value=outcome.value,
        status=QualitySignal.Status.ERROR if outcome.error else QualitySignal.Status.OK,
        detail=detail,
        cost_usd=outcome.cost_usd,
        simulated=simulated,
    )
    return signal


# --- Feedback -------------------------------------------------------------------------------


def feedback_value(*, score: float | None, thumbs: str | None) -> float:
    """The feedback's value in [0, 1] from exactly one of ``score`` and ``thumbs``."""
    if (score is None) == (thumbs is None):
        raise FeedbackError('Send exactly one of "score" (0 to 1) and "thumbs" ("up" or "down").')
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise FeedbackError(f'"thumbs" must be "up" or "down", not {thumbs!r}.')
        return 1.0 if thumbs == "up" else 0.0
    if not 0.0 <= score <= 1.0:
        raise FeedbackError(f'"score" must be between 0 and 1, got {score}.')
    return float(score)


def feedback_record(
    *, call: RoutedCall, score: float | None, thumbs: str | None, comment: str = ""
) -> tuple[QualitySignal, bool]:
    """Record a user's feedback on ``call`` once: (signal, created)."""
    if call.is_shadow:
        raise FeedbackError(
            f"Call {call.pk} is a shadow call (run in the background, never shown to a "
            "user): send feedback on the call your user saw."
        )
    value = feedback_value(score=score, thumbs=thumbs)
    detail = {"comment": comment[:2000], "thumbs": thumbs, "score": score}
    try:
        return quality_signal_record(call=call, source=Source.FEEDBACK, value=value, detail=detail)
    except ValidationError as err:
        raise FeedbackError("; ".join(err.messages)) from err
