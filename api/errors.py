"""The API's errors and how each API renders them.

Views and auth raise ``ApiError`` subclasses (or let engine / validation errors through);
each NinjaAPI turns them into its own body shape: the routing API answers
``{"message", "code", ...}``, the OpenAI-compatible API answers OpenAI's
``{"error": {"message", "type", "param", "code"}}``. Every 4xx says what was wrong and what
to do; nothing a client sends can produce a 500 or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from routing_platform.engine import errors as engine_errors
from routing_platform.engine.errors import RoutingError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    status_code = 400
    code = "invalid_request"
    openai_type = "invalid_request_error"

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    pass


class AuthError(ApiError):
    status_code = 401
    code = "invalid_api_key"


class ScopeError(ApiError):
    status_code = 403
    code = "insufficient_scope"
    openai_type = "permission_error"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limit_exceeded"
    openai_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: int, limit: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after_s)}
        if limit is not None:
            headers.update({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0"})
        super().__init__(message, headers=headers)


class UpstreamError(ApiError):
    """Every upstream attempt failed (the platform has already retried and fallen back), so
    it tells the official SDKs not to retry on their own (``x-should-retry: false``): their
    default retry would run the call again and record it twice. A client that wants to
    retry sends an ``Idempotency-Key`` (docs/reliability.md)."""

    status_code = 502
    code = "upstream_error"
    openai_type = "api_error"

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            message, param=param, headers={"x-should-retry": "false", **(headers or {})}
        )


#: Seconds a client is asked to wait on any 503 that does not name its own wait.
SERVICE_RETRY_AFTER_S = 5


class ServiceUnavailable(ApiError):
    """A dependency (Redis, the database, a configuration) is down: always with
    ``Retry-After``, so clients and proxies back off instead of hammering."""

    status_code = 503
    code = "service_unavailable"
    openai_type = "api_error"

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            message,
            param=param,
            headers={"Retry-After": str(SERVICE_RETRY_AFTER_S), **(headers or {})},
        )


#: Seconds a client is asked to wait when the database is unreachable (a restart, a failover).
DATABASE_RETRY_AFTER_S = 5


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The database is unavailable (restarting or unreachable), so the request could not "
            f"be completed: retry in {DATABASE_RETRY_AFTER_S} s.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )


def body_too_large_message(limit: int) -> str:
    return (
        f"The request body is larger than {limit} bytes (API_MAX_BODY_BYTES): "
        "send a shorter text or raise the limit."
    )


def _routing_error_to_api_error(err: Exception) -> ApiError:
    """Map the engine's typed errors to HTTP: caller mistakes are 4xx, provider failures 502."""
    message = str(getattr(err, "message", None) or err)
    if isinstance(err, engine_errors.UnknownModelError):
        return ModelNotFound(message, param="model")
    if isinstance(err, engine_errors.InvalidRequestError):
        return BadRequest(message, param=getattr(err, "param", None))
    if isinstance(err, engine_errors.ContextLengthError):
        return BadRequest(
            f"The prompt does not fit the model's context window ({message}): shorten it, "
            'lower max_tokens, or send model "router" to fall back to a larger model.',
            param="messages",
        )
    if isinstance(err, engine_errors.ProviderNotConfiguredError):
        return ServiceUnavailable(
            f"The provider {err.provider!r} is not configured on this server ({message}): "
            "pick another model, or ask the operator to set the key."
        )
    if isinstance(err, engine_errors.ProviderRateLimitError):
        retry_after = max(1, round(err.retry_after_s or 1))
        return RateLimited(
            f"The upstream provider rate-limited the call ({message}); retry later.",
            retry_after_s=retry_after,
        )
    return UpstreamError(f"The upstream provider failed: {message}")


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(item) for item in error.get("loc", ()) if item != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid value')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid request: " + "; ".join(parts) + more


def _first_param(errors: list[dict[str, Any]]) -> str | None:
    for error in errors:
        loc = [str(item) for item in error.get("loc", ()) if item not in ("body", "payload")]
        if loc:
            return ".".join(loc)
    return None


def classify(exc: Exception) -> tuple[ApiError, list | None]:
    """Any exception -> (the ApiError to answer with, validation details or None)."""
    if isinstance(exc, ApiError):
        return exc, None
    if isinstance(exc, ValidationError):
        errors = [
            {key: value for key, value in error.items() if key in ("loc", "msg", "type")}
            for error in exc.errors
        ]
        return BadRequest(_validation_message(errors), param=_first_param(errors)), errors
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(body_too_large_message(settings.API_MAX_BODY_BYTES)), None
    if isinstance(exc, HttpError):
        status = exc.status_code
        message = str(exc)
        if status == 400 and "parse" in message.lower():
            message = "The request body is not valid JSON: send a JSON object."
        err = ApiError(message)
        err.status_code = status
        if status == 401:
            err = AuthError(
                "Missing API key: send `Authorization: Bearer rk_...` (create a key in the "
                "admin or with `manage.py routing create-api-key`)."
            )
        return err, None
    if isinstance(exc, Http404):
        return NotFound(str(exc) or "Not found."), None
    if isinstance(exc, DjangoValidationError):
        # A service refused the request (full_clean or a state rule): its messages say why.
        if hasattr(exc, "message_dict"):
            messages = [f"{field}: {'; '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            param = next(iter(exc.message_dict), None)
        else:
            messages, param = list(exc.messages), None
        if param == "__all__":
            param = None
        return BadRequest(" ".join(messages) or "Invalid request.", param=param), None
    if isinstance(exc, ObjectDoesNotExist):
        return NotFound(f"Not found: {exc}"), None
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is down, not the request wrong: 503 + Retry-After, as for Redis.
        logger.warning("Database unavailable: %s: %s", type(exc).__name__, exc)
        return DatabaseUnavailable(), None
    if isinstance(exc, IntegrityError):
        return Conflict(
            "The request conflicts with existing data (e.g. a key that is already taken): "
            "change it and retry."
        ), None
    if isinstance(exc, RoutingError):
        return _routing_error_to_api_error(exc), None
    logger.exception("Unhandled API error", exc_info=exc)
    err = ApiError("Internal error: the failure was logged; retry, or report it.")
    err.status_code = 500
    err.code = "internal_error"
    err.openai_type = "api_error"
    return err, None


def routing_error_body(err: ApiError, details: list | None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": err.message, "code": err.code}
    if err.param:
        body["param"] = err.param
    if details is not None:
        body["detail"] = details
    return body


def openai_error_body(err: ApiError, details: list | None) -> dict[str, Any]:
    return {
        "error": {
            "message": err.message,
            "type": err.openai_type,
            "param": err.param,
            "code": err.code,
        }
    }


def _json(body: dict[str, Any], err: ApiError) -> HttpResponse:
    response = JsonResponse(body, status=err.status_code)
    for name, value in err.headers.items():
        response[name] = value
    return response


def error_response(
    exc: Exception, render: Callable[[ApiError, list | None], dict[str, Any]]
) -> HttpResponse:
    err, details = classify(exc)
    return _json(render(err, details), err)


def install_error_handlers(
    api: NinjaAPI, render: Callable[[ApiError, list | None], dict[str, Any]]
) -> None:
    """Route every exception of ``api`` through ``render`` (replacing ninja's defaults)."""

    def handle(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(exc, render)

    for exc_class in (Exception, ApiError, ValidationError, HttpError, Http404):
        api.add_exception_handler(exc_class, handle)
