"""``Idempotency-Key`` on the HTTP API (``POST`` under ``/v1/`` and ``/api/v1/routing/``),
with Stripe's semantics.

The first request with a key runs and its answer (status, headers, body) is stored; a
request with the same key and the same body gets that answer again without running (so
one logical call makes one record, whatever the client's retries), marked
``Idempotent-Replayed: true``; the same key with a different body is a 422; the same key
while the first request still runs is a 409 (retry shortly). Keys are scoped to the
caller's credentials and kept ``KEY_TTL`` (24 h).

Answers that say the request did not run are not stored, so a retry with the key runs
it: 401/403 (credentials), 409, 429 (rate limit) and 5xx other than 502 (503: the
database or queue was down). A 502 (the upstream failed, the call recorded as an error)
is stored and replayed, as Stripe replays its errors: send a new key to try again.

It wraps the API's ASGI dispatcher (``api.asgi.ApiDispatcher``), so the lean
``/v1/chat/completions`` path and the Django views share one implementation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone

from api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    classify,
    openai_error_body,
    routing_error_body,
)
from api.middleware import content_length_error
from api.models import IdempotentRequest

HEADER = b"idempotency-key"
PATH_PREFIXES = ("/v1/", "/api/v1/routing/")
KEY_MAX_CHARS = 255
KEY_TTL = dt.timedelta(hours=24)
#: A first request still "running" after this long died with its process: take it over.
IN_PROGRESS_TIMEOUT = dt.timedelta(minutes=10)
_NOT_STORED_STATUSES = frozenset({401, 403, 409, 429})


class IdempotencyKeyReused(ApiError):
    status_code = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """Either the id of the row this request now owns (run it), or the answer to replay."""

    request_id: int | None = None
    answer: StoredAnswer | None = None


def _fresh_row(*, scope: str, key: str, fingerprint: str) -> IdempotentRequest:
    return IdempotentRequest.objects.create(
        scope=scope, key=key, fingerprint=fingerprint, created_at=timezone.now()
    )


def idempotency_claim(*, scope: str, key: str, fingerprint: str) -> Claim:
    """Claim ``key`` for a request with ``fingerprint``; raises ``IdempotencyKeyReused``
    (another body) or ``Conflict`` (the first request still runs)."""
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                row = _fresh_row(scope=scope, key=key, fingerprint=fingerprint)
            return Claim(request_id=row.pk)
        except IntegrityError:
            pass
        with transaction.atomic():
            row = IdempotentRequest.objects.select_for_update().filter(scope=scope, key=key).first()
            if row is None:
                continue  # deleted meanwhile (released): claim it again
            if row.created_at < now - KEY_TTL:
                row.delete()
                continue
            if row.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request body: "
                    "use a new key for a new request.",
                )
            if row.status_code is None:
                if row.created_at >= now - IN_PROGRESS_TIMEOUT:
                    raise Conflict(
                        "A request with this Idempotency-Key is still running: retry shortly "
                        "to get its answer.",
                        headers={"Retry-After": "1"},
                    )
                row.created_at = now  # its first run died: this request takes it over
                row.save(update_fields=["created_at"])
                return Claim(request_id=row.pk)
            answer = StoredAnswer(
                status_code=row.status_code,
                headers=[(str(name), str(value)) for name, value in row.response_headers],
                body=bytes(row.response_body),
            )
            return Claim(answer=answer)
    raise Conflict("The Idempotency-Key is changing under concurrent requests: retry.")


def idempotency_store(*, request_id: int, answer: StoredAnswer) -> None:
    IdempotentRequest.objects.filter(pk=request_id).update(
        status_code=answer.status_code,
        response_headers=[list(pair) for pair in answer.headers],
        response_body=answer.body,
    )


def idempotency_release(*, request_id: int) -> None:
    """Forget a claim whose request did not run to an answer worth replaying."""
    IdempotentRequest.objects.filter(pk=request_id, status_code__isnull=True).delete()


def idempotency_purge() -> int:
    """Delete the keys older than ``KEY_TTL`` (a periodic job: settings.RQ_PERIODIC_JOBS)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - KEY_TTL).delete()
    return deleted


def is_stored(status_code: int) -> bool:
    """Answers replayed for the key: a request that ran (2xx, 4xx, the upstream's 502)."""
    if status_code in _NOT_STORED_STATUSES:
        return False
    return status_code < 500 or status_code == 502


def _in_thread(function):
    """``function`` run off the event loop with fresh database connections (the lean API
    paths skip Django's per-request connection signals)."""

    def run(**kwargs):
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run)


class IdempotencyGuard:
    """ASGI wrapper: requests without the header (or not a POST under the API prefixes) go
    straight to ``app``; the others are claimed, replayed or refused as the module says."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        key = _idempotency_key(scope)
        if key is None or not _body_within_limit(scope):
            # No key; or a body the app refuses unread (413/400) or caps as it reads it
            # (no Content-Length): it is not buffered here first.
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # the client went away
            return
        try:
            claim = await _in_thread(idempotency_claim)(
                scope=_credentials_hash(scope),
                key=_valid_key(key),
                fingerprint=_fingerprint(scope, body),
            )
        except Exception as exc:  # rendered in the API's shape (422, 409, 400, 503)
            await _send_error(scope, send, exc)
            return
        if claim.answer is not None:
            await _replay(send, claim.answer)
            return
        recorder = _Recorder(send)
        try:
            await self.app(scope, _replaying(body, receive), recorder.send)
        except BaseException:
            await _in_thread(idempotency_release)(request_id=claim.request_id)
            raise
        answer = recorder.answer()
        if answer is not None and is_stored(answer.status_code):
            await _in_thread(idempotency_store)(request_id=claim.request_id, answer=answer)
        else:
            await _in_thread(idempotency_release)(request_id=claim.request_id)


def _idempotency_key(scope) -> bytes | None:
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    if not scope["path"].startswith(PATH_PREFIXES):
        return None
    for name, value in scope["headers"]:
        if name.lower() == HEADER:
            return value
    return None


def _body_within_limit(scope) -> bool:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return content_length_error(value.decode("latin-1")) is None
    return False


def _valid_key(raw: bytes) -> str:
    key = raw.decode("latin-1").strip()
    if not key or len(key) > KEY_MAX_CHARS or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1 to {KEY_MAX_CHARS} printable characters (e.g. a UUID).",
            param="Idempotency-Key",
        )
    return key


def _credentials_hash(scope) -> str:
    authorization = b""
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            authorization = value
    return hashlib.sha256(authorization).hexdigest()


def _fingerprint(scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (
        scope["method"].encode(),
        scope["path"].encode(),
        scope.get("query_string", b""),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def read_body(receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive):
    """A ``receive`` that hands the app the body already read, then the client's messages."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _Recorder:
    """Forwards the app's response and keeps a copy of it."""

    def __init__(self, send) -> None:
        self.downstream = send
        self.status_code: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.complete = False

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status_code = message["status"]
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", [])
                if name.lower() != b"content-length"
            ]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        await self.downstream(message)

    def answer(self) -> StoredAnswer | None:
        if self.status_code is None or not self.complete:
            return None  # the client or the app stopped mid-answer: nothing to replay
        return StoredAnswer(self.status_code, self.headers, b"".join(self.chunks))


async def _replay(send, answer: StoredAnswer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _send_error(scope, send, exc: Exception) -> None:
    err, details = classify(exc)
    render = openai_error_body if scope["path"].startswith("/v1/") else routing_error_body
    body = json.dumps(render(err, details), cls=DjangoJSONEncoder).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [
        (name.encode("latin-1"), str(value).encode("latin-1"))
        for name, value in err.headers.items()
    ]
    await send({"type": "http.response.start", "status": err.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
