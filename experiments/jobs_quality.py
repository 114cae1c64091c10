"""RQ jobs of quality measurement: the LLM judge, on its own "judge" queue.

Its own queue, so judging (slower, and optional) never delays routed calls; the worker
listens on it beside "routing" and "shadow".
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

JUDGE_JOB_TIMEOUT_S = 300
JUDGE_MAX_RETRIES = 2


def judge_pair_run(treatment_call_id: int) -> str:
    """Judge the shadow pair of ``treatment_call_id`` once; the signal's status."""
    # Imported here: the service module imports this one (to enqueue the job).
    from experiments.services.quality import judge_pair_run as run

    signal = run(treatment_call_id=treatment_call_id)
    if signal is None:
        logger.warning("call %s has no complete shadow pair to judge", treatment_call_id)
        return "skipped"
    return signal.status


def enqueue_judge(*, treatment_call_id: int, queue_name: str):
    """Put ``judge_pair_run`` on ``queue_name`` (one job per pair: its id names the call)."""
    import django_rq
    from rq import Retry

    return django_rq.get_queue(queue_name).enqueue(
        judge_pair_run,
        treatment_call_id,
        job_id=f"judge-{treatment_call_id}",
        job_timeout=JUDGE_JOB_TIMEOUT_S,
        retry=Retry(max=JUDGE_MAX_RETRIES),
        result_ttl=600,
        failure_ttl=7 * 24 * 3600,
    )
