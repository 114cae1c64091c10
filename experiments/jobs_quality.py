"""RQ jobs of quality measurement: the LLM judge, on its own "judge" queue.

Its own queue, so judging (slower, and optional) never delays routed calls; the worker
listens on it beside "routing" and "shadow". ``experiments.services.quality`` enqueues the
job by its import path (``JUDGE_JOB``).
"""

from __future__ import annotations

import logging

from experiments.services.quality import judge_pair_run as run

logger = logging.getLogger(__name__)


def judge_pair_run(treatment_call_id: int) -> str:
    """Judge the shadow pair of ``treatment_call_id`` once; the signal's status."""
    signal = run(treatment_call_id=treatment_call_id)
    if signal is None:
        logger.warning("call %s has no complete shadow pair to judge", treatment_call_id)
        return "skipped"
    return signal.status
