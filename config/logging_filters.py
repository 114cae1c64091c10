"""A logging filter that masks provider keys and API tokens before any handler writes."""

from __future__ import annotations

import logging
import re

from django.conf import settings

# Shapes of secrets we may be handed: OpenAI/Anthropic keys, Google API keys, our own
# API tokens ("rk_..."), and bearer headers.
_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"rk_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)(x-api-key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)([?&]key=)[A-Za-z0-9._\-]{8,}"),
]


def configured_secrets() -> list[str]:
    """The provider keys currently set, read lazily from Django settings."""
    try:
        names = (
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GEMINI_API_KEY",
            "OPENAI_COMPATIBLE_API_KEY",
            "SECRET_KEY",
        )
        return [v for v in (getattr(settings, n, "") for n in names) if v and len(v) >= 6]
    except Exception:  # settings not configured: nothing extra to mask
        return []


def redact(text: str) -> str:
    """Mask every known secret and every secret-shaped token in ``text``."""
    for secret in configured_secrets():
        text = text.replace(secret, "[REDACTED]")
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[REDACTED]", text)
        else:
            text = pattern.sub("[REDACTED]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Attached to every handler in settings.LOGGING: the message, the traceback and the stack
    of each record are masked before the handler formats and writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters render the traceback after the filters have run, from exc_info;
            # render it now so the masked text is what they print (they reuse exc_text).
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
