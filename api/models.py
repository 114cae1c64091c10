"""API keys: a name, a public prefix, the hash of the secret token, scopes and a rate limit.

The token (``rk_<prefix>_<secret>``) is shown once, when the key is created; only its
SHA-256 is stored. A token carries 256 bits of randomness, so a fast hash is enough (a
slow password hash protects low-entropy secrets and would add milliseconds to every call).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class Scope(models.TextChoices):
    READ = "read", "Read (GET endpoints)"
    WRITE = "write", "Write (execute, evaluate, experiments)"


class ApiKey(models.Model):
    name = models.CharField(max_length=100, help_text="Who or what uses this key.")
    prefix = models.CharField(
        max_length=16,
        unique=True,
        editable=False,
        help_text="The public part of the token (rk_<prefix>_...), to tell keys apart.",
    )
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(
        default=list, help_text='Granted scopes: a list of "read" and/or "write".'
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests per minute; empty means API_DEFAULT_RATE_LIMIT_PER_MINUTE.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate_limit_per_minute__isnull=True)
                | models.Q(rate_limit_per_minute__gte=1),
                name="apikey_rate_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (rk_{self.prefix}_...)"

    def clean(self) -> None:
        allowed = set(Scope.values)
        if not isinstance(self.scopes, list) or not self.scopes:
            raise ValidationError({"scopes": 'Grant at least one scope: "read", "write".'})
        unknown = [scope for scope in self.scopes if scope not in allowed]
        if unknown:
            raise ValidationError({"scopes": f"Unknown scope(s) {unknown}: use {sorted(allowed)}."})

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotentRequest(models.Model):
    """A POST sent with an ``Idempotency-Key`` header, and the answer it got (``api.idempotency``).

    Keys are scoped to the caller's credentials (``scope``: the SHA-256 of its Authorization
    header), so two clients never share one. ``status_code`` is null while the first
    request is still running.
    """

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=list, blank=True)
    response_body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "idempotent request"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotent_request_scope_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"


class CallRecordDeadLetter(models.Model):
    """No table: the admin's page for the dead letters kept in Redis (``api.dead_letters``).
    "change" lets a staff user replay or delete them."""

    class Meta:
        managed = False
        default_permissions = ("view", "change")
        verbose_name = "call record dead letter"
        verbose_name_plural = "call record dead letters"

    def __str__(self) -> str:
        return "Call record dead letters"
