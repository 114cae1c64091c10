"""A bounded in-process writer: call records written after the answer, when Redis is absent.

Without Redis the OpenAI-compatible endpoint would write each record to the database on the
response path (tens of milliseconds on SQLite under load). Instead the record goes onto a
bounded queue that one thread writes, oldest first; the answer does not wait for it.

- Never dropped: when the queue is full, ``submit`` returns False and the caller writes the
  record inline. A database error is retried with backoff for ``RETRY_BUDGET_S``; a record
  the database refuses for good (invalid data), or one still unwritten when the budget or
  the shutdown runs out, is appended as JSON to ``dead_letter_path`` and logged.
- Flushed on shutdown: ``stop`` (the ASGI lifespan shutdown that SIGTERM starts, else
  ``atexit``) writes what is queued and logs the count.
- Loss window: a crash or SIGKILL of the process loses what is still queued, at most
  ``max_pending`` records: normally those answered in the last few milliseconds.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, close_old_connections
from django.db import Error as DatabaseError

logger = logging.getLogger(__name__)

MAX_PENDING = 1000
RETRY_BUDGET_S = 60.0
BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
STOP_TIMEOUT_S = 20.0

# The database refuses these whatever the retry: the record goes to the dead-letter file.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError,
    ValueError,
    TypeError,
    DataError,
    IntegrityError,
)

_STOP = object()


@dataclass(frozen=True)
class WriterCounts:
    written: int
    dead_lettered: int
    pending: int


class RecordWriter:
    """One thread writing ``write(fields)`` for each submitted record, from a bounded queue."""

    def __init__(
        self,
        write: Callable[[dict[str, Any]], None],
        *,
        dead_letter: Callable[[dict[str, Any], str], None],
        max_pending: int = MAX_PENDING,
        retry_budget_s: float = RETRY_BUDGET_S,
    ) -> None:
        self._write = write
        self._dead_letter = dead_letter
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._retry_budget_s = retry_budget_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.submitted = 0
        self.written = 0
        self.dead_lettered = 0

    def counts(self) -> WriterCounts:
        return WriterCounts(self.written, self.dead_lettered, self._queue.qsize())

    def submit(self, fields: dict[str, Any]) -> bool:
        """Queue a record; False when the queue is full or the writer stopped (write it inline)."""
        if self._stopping.is_set():
            return False
        self._ensure_thread()
        try:
            self._queue.put_nowait(fields)
        except queue.Full:
            return False
        self.submitted += 1
        return True

    def flush(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Wait until every submitted record is written (or dead-lettered); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.written + self.dead_lettered < self.submitted:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> WriterCounts:
        """Write what is queued, then end the thread; what is left after ``timeout_s`` goes
        to the dead-letter file. Returns the counts of this writer's whole life."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            before = self.written
            with contextlib.suppress(queue.Full):
                self._queue.put(_STOP, timeout=timeout_s)
            thread.join(timeout_s)
            logger.info(
                "Call-record writer: wrote %d pending record(s) on shutdown.",
                self.written - before,
            )
        self._dead_letter_the_rest("the process shut down before it was written")
        return self.counts()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="call-record-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                fields = self._queue.get()
                if fields is _STOP:
                    return
                self._write_one(fields)
        finally:
            close_old_connections()

    def _write_one(self, fields: dict[str, Any]) -> None:
        deadline = time.monotonic() + self._retry_budget_s
        for attempt in itertools.count():
            try:
                self._write(fields)
            except PERMANENT_ERRORS as err:
                self._give_up(fields, f"refused: {type(err).__name__}: {err}")
                return
            except DatabaseError as err:
                close_old_connections()
                pause = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                if self._stopping.is_set() or time.monotonic() + pause > deadline:
                    self._give_up(fields, f"database unavailable: {type(err).__name__}: {err}")
                    return
                time.sleep(pause)
            except Exception as err:  # an unexpected bug must not end the thread
                logger.exception("Call-record writer: unexpected error")
                self._give_up(fields, f"{type(err).__name__}: {err}")
                return
            else:
                self.written += 1
                return

    def _give_up(self, fields: dict[str, Any], reason: str) -> None:
        self.dead_lettered += 1
        self._dead_letter(fields, reason)

    def _dead_letter_the_rest(self, reason: str) -> None:
        while True:
            try:
                fields = self._queue.get_nowait()
            except queue.Empty:
                return
            if fields is not _STOP:
                self._give_up(fields, reason)


def jsonl_dead_letter(path: Path, encode: Callable[[dict[str, Any]], bytes]):
    """A ``dead_letter`` that appends ``{"reason", "payload"}`` lines to ``path`` and logs."""
    lock = threading.Lock()

    def dead_letter(fields: dict[str, Any], reason: str) -> None:
        line = encode({"reason": reason, "payload": fields}) + b"\n"
        try:
            with lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as handle:
                    handle.write(line)
        except OSError:
            logger.error(
                "Call record not written (%s) and %s is not writable: %s",
                reason,
                path,
                line.decode(errors="replace"),
            )
            return
        logger.error("Call record not written (%s): kept in %s", reason, path)

    return dead_letter
