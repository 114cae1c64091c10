"""Bearer-token auth for django-ninja: key lookup, scope check and the per-key rate limit.

Async, so the hot path (a key seen in the last few seconds) does no thread hop and no
database query: one Redis round trip for the rate-limit counter.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import HttpRequest
from ninja.security import HttpBearer

from api.errors import AuthError, RateLimited, ScopeError
from api.ratelimit import rate_limit_hit
from api.services import ApiKeyError, AuthenticatedKey, api_key_authenticate, api_key_cached

MISSING_KEY = (
    "Missing API key: send `Authorization: Bearer rk_...` (create a key in the admin or with "
    "`manage.py routing create-api-key --name NAME`)."
)


def _authenticate_in_thread(token: str) -> AuthenticatedKey:
    # The OpenAI paths skip Django's per-request connection signals (api.asgi), so the
    # thread that runs this refreshes its own database connection.
    close_old_connections()
    try:
        return api_key_authenticate(token)
    finally:
        close_old_connections()


async def authorize(header: str, scope: str) -> AuthenticatedKey:
    """The key of an ``Authorization`` header value, if it has ``scope`` and is within its
    rate limit; else an ``ApiError`` (401, 403, 429). Shared by the ninja views and the
    lean OpenAI-compatible path (``api.asgi``)."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not header:
        raise AuthError(MISSING_KEY)
    if scheme.lower() != "bearer" or not token:
        raise AuthError(
            "The Authorization header must be `Bearer rk_...` (the key, after one space)."
        )
    key = api_key_cached(token)
    if key is None:
        try:
            key = await sync_to_async(_authenticate_in_thread)(token)
        except ApiKeyError as err:
            raise AuthError(str(err)) from None
    if scope not in key.scopes:
        raise ScopeError(
            f"The API key {key.name!r} lacks the {scope!r} scope "
            f"(it has {', '.join(sorted(key.scopes))}): use a key with that scope."
        )
    decision = await rate_limit_hit(key_id=key.id, limit_per_minute=key.rate_limit_per_minute)
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {decision.limit} requests per minute exceeded for the API key "
            f"{key.name!r}: retry after {decision.retry_after_s} s.",
            retry_after_s=decision.retry_after_s,
            limit=decision.limit,
        )
    return key


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer rk_...`` with the given scope; sets ``request.auth``."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    async def __call__(self, request: HttpRequest) -> AuthenticatedKey:
        return await authorize(request.headers.get("Authorization", ""), self.scope)

    def authenticate(self, request: HttpRequest, token: str) -> None:  # HttpBearer's hook
        raise NotImplementedError("ApiKeyAuth authenticates in __call__ (see authorize)")


read_auth = ApiKeyAuth("read")
write_auth = ApiKeyAuth("write")
