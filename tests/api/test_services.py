"""API key services: tokens shown once, hashes stored, authentication and revocation."""

from __future__ import annotations

import hashlib

import pytest

from api.models import ApiKey
from api.services import (
    ApiKeyError,
    api_key_authenticate,
    api_key_cached,
    api_key_create,
    api_key_revoke,
    parse_scopes,
)

pytestmark = pytest.mark.django_db


def test_create_returns_rk_token_and_stores_only_its_hash():
    """The token has the rk_<prefix>_<secret> shape; the row keeps the prefix and a SHA-256."""
    key, token = api_key_create(name="ci", scopes="read")
    assert token.startswith(f"rk_{key.prefix}_")
    assert len(token) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    secret_part = token.split("_", 2)[2]
    for value in (stored.name, stored.prefix, stored.secret_hash, str(stored.scopes)):
        assert secret_part not in value
    assert stored.scopes == ["read"]


def test_authenticate_accepts_the_token_and_touches_last_used():
    """A valid token authenticates with its scopes and default rate limit."""
    key, token = api_key_create(name="svc", scopes=["read", "write"])
    authenticated = api_key_authenticate(token)
    assert authenticated.id == key.pk
    assert authenticated.scopes == frozenset({"read", "write"})
    assert authenticated.rate_limit_per_minute == 600
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert api_key_cached(token) == authenticated


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "not valid"),
        (lambda t: "sk-" + t, "malformed"),
        (lambda t: "rk_unknownprefix_xyz", "not valid"),
    ],
)
def test_authenticate_refuses_wrong_tokens_without_echoing_them(mangle, message):
    """A wrong or malformed token is refused with a reason that does not contain it."""
    _, token = api_key_create(name="svc")
    bad = mangle(token)
    with pytest.raises(ApiKeyError, match=message) as info:
        api_key_authenticate(bad)
    assert bad not in str(info.value)


def test_revoked_key_stops_authenticating_at_once():
    """Revocation clears the in-process cache, so the next call is refused."""
    key, token = api_key_create(name="old")
    api_key_authenticate(token)
    api_key_revoke(key=key)
    assert api_key_cached(token) is None
    with pytest.raises(ApiKeyError, match="revoked"):
        api_key_authenticate(token)


def test_per_key_rate_limit_overrides_the_default():
    """A key's own limit wins over API_DEFAULT_RATE_LIMIT_PER_MINUTE."""
    _, token = api_key_create(name="slow", rate_limit_per_minute=7)
    assert api_key_authenticate(token).rate_limit_per_minute == 7


def test_parse_scopes_validates_and_orders():
    """Scopes parse from "write,read" to the canonical order; unknown ones are refused."""
    assert parse_scopes("write, read") == ["read", "write"]
    assert parse_scopes(["read"]) == ["read"]
    with pytest.raises(ValueError, match="admin"):
        parse_scopes("read,admin")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")
