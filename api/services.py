"""API key services: create (token returned once), revoke, authenticate.

Authentication runs on every API call, so a successful lookup is kept in a small
in-process cache for ``AUTH_CACHE_TTL_S`` seconds: a revoked key stops working at once in
the process that revoked it and within that many seconds everywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiKey, Scope

TOKEN_PREFIX = "rk_"
AUTH_CACHE_TTL_S = 5.0
LAST_USED_RESOLUTION = timedelta(seconds=60)
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class AuthenticatedKey:
    """What a request knows about the key that authenticated it."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    rate_limit_per_minute: int


class ApiKeyError(Exception):
    """A token that does not authenticate; the message says why, without the token."""


_cache: dict[str, tuple[float, AuthenticatedKey]] = {}
_cache_lock = threading.Lock()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"read,write"`` or a list -> validated, ordered, de-duplicated scopes."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = [item.strip().lower() for item in items if item and item.strip()]
    allowed = Scope.values
    unknown = sorted({scope for scope in scopes if scope not in allowed})
    if unknown:
        raise ValueError(f"Unknown scope(s) {unknown}: use read, write or read,write.")
    if not scopes:
        raise ValueError("Grant at least one scope: read, write or read,write.")
    return [scope for scope in allowed if scope in scopes]


def _new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))


@transaction.atomic
def api_key_create(
    *,
    name: str,
    scopes: list[str] | str = ("read", "write"),
    rate_limit_per_minute: int | None = None,
    user=None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its token; the token is never retrievable again."""
    prefix = _new_prefix()
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = _new_prefix()
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name.strip(),
        prefix=prefix,
        secret_hash=token_hash(token),
        scopes=parse_scopes(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=user,
    )
    key.full_clean()
    key.save()
    return key, token


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key (idempotent); it stops authenticating in this process at once."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    auth_cache_clear()
    return key


def auth_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def api_key_cached(token: str) -> AuthenticatedKey | None:
    """The cached key of ``token`` if it was authenticated less than the TTL ago (no I/O)."""
    entry = _cache.get(token_hash(token))
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def api_key_authenticate(token: str) -> AuthenticatedKey:
    """Check a bearer token against the stored hashes; raise ApiKeyError saying what is wrong.

    Touches ``last_used_at`` at most once a minute per key, so it costs no write per call.
    """
    digest = token_hash(token)
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        raise ApiKeyError(
            "The API key is malformed: send `Authorization: Bearer rk_...` with a key created "
            "in the admin or by `manage.py routing create-api-key`."
        )
    prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.secret_hash, digest):
        raise ApiKeyError("The API key is not valid: check it, or create a new one.")
    if key.revoked_at is not None:
        raise ApiKeyError(f"The API key {key.name!r} was revoked: create a new one.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    authenticated = AuthenticatedKey(
        id=key.pk,
        name=key.name,
        prefix=key.prefix,
        scopes=frozenset(key.scopes),
        rate_limit_per_minute=key.rate_limit_per_minute
        or settings.API_DEFAULT_RATE_LIMIT_PER_MINUTE,
    )
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (time.monotonic() + AUTH_CACHE_TTL_S, authenticated)
    return authenticated
