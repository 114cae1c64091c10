"""Dead letters: call records that the drain could not write, kept aside with the reason.

The drain (``api.jobs.call_records_drain``) never stops on one record: a payload the
database or the service refuses (bad data, a value out of range, a bug) moves here, and
the records behind it are written. Each dead letter keeps the original payload, the
error and when it failed, so an operator can list it (``routing dead-letters``, the
admin, ``/health``), fix the cause and replay it; replaying writes it exactly once
(``routed_call_record`` is idempotent on the call's key).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from api.recording import FAILED_RECORDS_KEY, record_payload

ERROR_MAX_CHARS = 2000


@dataclass(frozen=True)
class DeadLetter:
    id: str
    failed_at: float
    error: str
    attempts: int
    payload: str
    raw: bytes  # the list entry, for LREM

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "failed_at": self.failed_at,
            "error": self.error,
            "attempts": self.attempts,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class ReplayOutcome:
    recorded: list[str]
    failed: dict[str, str]


def dead_letter_entry(raw_payload: bytes | str, error: BaseException, attempts: int = 1) -> bytes:
    """The list entry of a payload that could not be written because of ``error``."""
    payload = raw_payload.decode() if isinstance(raw_payload, bytes) else raw_payload
    return json.dumps(
        {
            "id": uuid.uuid4().hex[:12],
            "failed_at": time.time(),
            "error": f"{type(error).__name__}: {error}"[:ERROR_MAX_CHARS],
            "attempts": attempts,
            "payload": payload,
        }
    ).encode()


def _parse(raw: bytes) -> DeadLetter:
    try:
        entry = json.loads(raw)
        return DeadLetter(
            id=str(entry["id"]),
            failed_at=float(entry["failed_at"]),
            error=str(entry["error"]),
            attempts=int(entry.get("attempts", 1)),
            payload=str(entry["payload"]),
            raw=raw,
        )
    except (ValueError, TypeError, KeyError):
        # An entry in the old format: the bare payload (its id: a digest, stable across runs).
        return DeadLetter(
            id=f"raw-{hashlib.sha256(raw).hexdigest()[:12]}",
            failed_at=0.0,
            error="unknown (recorded before dead letters kept their reason)",
            attempts=1,
            payload=raw.decode(errors="replace"),
            raw=raw,
        )


def dead_letters_list(connection, *, limit: int | None = None) -> list[DeadLetter]:
    """The dead letters, oldest first (``limit``: only the oldest that many)."""
    entries = connection.lrange(FAILED_RECORDS_KEY, 0, -1)
    letters = [_parse(raw) for raw in reversed(entries)]  # LPUSHed: the newest is first
    return letters if limit is None else letters[:limit]


def dead_letters_replay(connection, *, ids: list[str] | None = None) -> ReplayOutcome:
    """Write the dead letters ``ids`` (all when None) again; those written leave the list,
    the others stay with the new error and one more attempt."""
    recorded, failed = [], {}
    for letter in dead_letters_list(connection):
        if ids is not None and letter.id not in ids:
            continue
        try:
            record_payload(letter.payload)
        except Exception as err:  # any refusal keeps the letter, with its reason
            failed[letter.id] = f"{type(err).__name__}: {err}"
            entry = json.loads(dead_letter_entry(letter.payload, err, letter.attempts + 1))
            entry["id"] = letter.id
            with connection.pipeline() as pipeline:
                pipeline.lrem(FAILED_RECORDS_KEY, 1, letter.raw)
                pipeline.lpush(FAILED_RECORDS_KEY, json.dumps(entry).encode())
                pipeline.execute()
            continue
        connection.lrem(FAILED_RECORDS_KEY, 1, letter.raw)
        recorded.append(letter.id)
    return ReplayOutcome(recorded=recorded, failed=failed)


def dead_letters_drop(connection, *, ids: list[str]) -> list[str]:
    """Delete the dead letters ``ids`` (after inspecting them); the ids removed."""
    dropped = []
    for letter in dead_letters_list(connection):
        if letter.id in ids and connection.lrem(FAILED_RECORDS_KEY, 1, letter.raw):
            dropped.append(letter.id)
    return dropped
