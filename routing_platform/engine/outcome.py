"""What one routed call ended with, as typed values at the engine's boundary.

`CallOutcome` is a successful call: the answer (`result`, the engine's
`{"response", "model", "provider", "_routing_metadata", ...}` as the renderers and the
record take it) and the fields callers read from it, parsed once. `RecordedError` is a
failed call: the engine error's kind (its class name), message, whether a retry may help,
the provider's HTTP status, and the partial routing metadata known when it failed. Both
are plain data: a `RecordedError` crosses a queue as JSON (`as_payload` / `from_payload`)
and comes back the same, without rebuilding an exception class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

METADATA_KEY = "_routing_metadata"


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _int(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class CallOutcome:
    """A call's answer and its routing facts (model, tier, cost, latency, tokens...)."""

    result: Mapping[str, Any]
    model: str = ""
    provider: str = ""
    tier: str = ""
    strategy: str = ""
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    confidence: float | None = None
    escalated: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str = "stop"

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> CallOutcome:
        """Parse the engine's result dict (``runtime.run_execute`` / ``run_evaluate``)."""
        meta = result.get(METADATA_KEY)
        meta = meta if isinstance(meta, Mapping) else {}
        confidence = meta.get("confidence")
        return cls(
            result=result,
            model=str(result.get("model") or meta.get("model") or ""),
            provider=str(result.get("provider") or meta.get("provider") or ""),
            tier=str(meta.get("tier") or ""),
            strategy=str(meta.get("strategy") or ""),
            cost_usd=_float(meta.get("cost")),
            latency_ms=_float(meta.get("latency_ms")),
            confidence=None if confidence is None else _float(confidence),
            escalated=bool(meta.get("escalated")),
            input_tokens=_int(meta.get("input_tokens")),
            output_tokens=_int(meta.get("output_tokens")),
            cached_tokens=_int(meta.get("cached_tokens")),
            reasoning_tokens=_int(meta.get("reasoning_tokens")),
            finish_reason=str(result.get("finish_reason") or "stop"),
        )

    @property
    def metadata(self) -> Mapping[str, Any]:
        meta = self.result.get(METADATA_KEY)
        return meta if isinstance(meta, Mapping) else {}


@dataclass(frozen=True)
class RecordedError:
    """A failed call as recorded: ``kind`` is the engine error's class name."""

    kind: str
    message: str
    retryable: bool = False
    status: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_exception(cls, error: BaseException) -> RecordedError:
        """An engine error (a ``RoutingError``, or anything raised) as a record."""
        kind = type(error).__name__
        metadata = getattr(error, "metadata", None)
        return cls(
            kind=kind,
            message=str(getattr(error, "message", None) or error) or kind,
            retryable=bool(getattr(error, "retryable", False)),
            status=getattr(error, "status_code", None),
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        )

    def as_payload(self) -> dict[str, Any]:
        """JSON-able fields (``from_payload`` reads them back)."""
        return {
            "type": self.kind,
            "message": self.message,
            "retryable": self.retryable,
            "status": self.status,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RecordedError:
        """Read back ``as_payload`` (older payloads carry only type, message, metadata)."""
        metadata = payload.get("metadata")
        status = payload.get("status")
        return cls(
            kind=str(payload.get("type") or "Error"),
            message=str(payload.get("message") or ""),
            retryable=bool(payload.get("retryable")),
            status=status if isinstance(status, int) else None,
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        )

    def __str__(self) -> str:
        return self.message or self.kind
