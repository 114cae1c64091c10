"""Routed-call values: what a row's fields hold, cleaned and clipped (no database access)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from config.logging_filters import redact
from experiments.models import RoutedCall
from routing_platform.engine.outcome import RecordedError

Status = RoutedCall.Status


Kind = RoutedCall.Kind


FINISHED = (Status.SUCCESS, Status.ERROR)


#: The routing decision a finished call records (in the admin's "Routing" order).
ROUTING_FIELDS = (
    "complexity",
    "complexity_score",
    "tier",
    "models_tried",
    "model",
    "provider",
    "escalated",
    "escalation_reason",
    "confidence",
)

#: What a finished call cost and took.
COST_FIELDS = ("input_tokens", "output_tokens", "cost_usd", "baseline_cost_usd", "latency_ms")


ERROR_MESSAGE_MAX = 4000


#: Relations full_clean need not look up: they come from rows just read (the database
#: enforces them anyway).
RELATIONS = ["experiment", "arm", "phase", "paired_call"]


def without_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string and key: PostgreSQL refuses
    them in text and JSON (``DataError``), and an upstream answer may carry one."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy (Decimals and other objects become strings), without NULs."""
    if value is None:
        return None
    return without_nul(json.loads(json.dumps(value, default=str)))


def to_decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0")


def float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def clip(text: Any, length: int) -> str:
    return without_nul("" if text is None else str(text))[:length]


def outcome_fields(metadata: Mapping[str, Any], result: Mapping[str, Any] | None) -> dict:
    """RoutedCall fields from ``_routing_metadata`` (and the result's top level)."""
    result = result or {}
    confidence = float_or_none(metadata.get("confidence"))
    if confidence is not None:
        confidence = min(max(confidence, 0.0), 1.0)
    models_tried = metadata.get("models_tried") or []
    if not isinstance(models_tried, list):
        models_tried = [str(models_tried)]
    fields = {
        "complexity": clip(metadata.get("complexity"), 16),
        "complexity_score": float_or_none(metadata.get("complexity_score")),
        "tier": clip(metadata.get("tier"), 16),
        "models_tried": [str(model) for model in models_tried],
        "model": clip(metadata.get("model") or result.get("model"), 128),
        "provider": clip(metadata.get("provider") or result.get("provider"), 64),
        "escalated": bool(metadata.get("escalated", False)),
        "escalation_reason": clip(metadata.get("escalation_reason"), 255),
        "confidence": confidence,
        "input_tokens": max(int(metadata.get("input_tokens") or 0), 0),
        "output_tokens": max(int(metadata.get("output_tokens") or 0), 0),
        "cost_usd": to_decimal(metadata.get("cost")),
        "baseline_cost_usd": to_decimal(metadata.get("baseline_cost")),
        "latency_ms": float_or_none(metadata.get("latency_ms")),
        "final_score": float_or_none(result.get("final_score")),
        "verdict": clip(result.get("verdict"), 64),
    }
    strategy = metadata.get("strategy")
    if strategy:
        fields["strategy"] = clip(strategy, 32)
    return fields


def error_fields(error: RecordedError | BaseException | str) -> tuple[dict, dict]:
    """(RoutedCall fields, partial routing metadata) of an error."""
    if isinstance(error, RecordedError):
        error_type, message, metadata = error.kind, str(error), error.metadata
    elif isinstance(error, BaseException):
        error_type = type(error).__name__
        message = str(error) or error_type
        metadata = getattr(error, "metadata", None) or {}
    else:
        error_type, message, metadata = "Error", str(error), {}
    fields = {
        "error_type": clip(error_type, 128),
        "error_message": clip(redact(message), ERROR_MESSAGE_MAX),
    }
    return fields, metadata if isinstance(metadata, Mapping) else {}


def id_of(value: Any) -> int | None:
    if value is None:
        return None
    return value.pk if hasattr(value, "pk") else int(value)


def instance_of(model, value: Any):
    """The instance when we were given one (saves the rollup a query), else None."""
    return value if isinstance(value, model) else None
