"""Jobs for ``test_worker_outages.py``, importable by a real ``rqworker`` process."""

from __future__ import annotations

import time
from pathlib import Path


def sleep_then_mark(directory: str, name: str, seconds: float) -> str:
    """Write ``NAME.started``, sleep, then write ``NAME.done`` (the job outlives an outage)."""
    Path(directory, f"{name}.started").write_text("started")
    time.sleep(seconds)
    Path(directory, f"{name}.done").write_text("done")
    return name
