"""Derived figures of summed calls: rates, per-request means, savings.

One arithmetic for every reader: the dashboard (overview, breakdowns, per arm, series:
:class:`Totals`), the alerts (their thresholds read the same :class:`Totals`) and the
report's arm summaries (:class:`~experiments.analysis.sums.CallSums`). The definitions
are those of ``experiments.analysis.metrics``: the escalation and error rates are over
*all* finished calls, savings are relative to the premium baseline's cost.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal


def share(part: float, whole: float) -> float | None:
    """``part / whole`` (a rate or a per-call mean); None when ``whole`` is 0."""
    return part / whole if whole else None


def savings_fraction(cost: float | Decimal, baseline: float | Decimal) -> float | None:
    """The saving relative to the premium baseline, ``1 - cost / baseline``; None when
    there is no baseline cost."""
    if baseline <= 0:
        return None
    return float((baseline - cost) / baseline)


def usd(amount: Decimal) -> float:
    """A Decimal amount as float USD (rounded to 1e-10)."""
    return float(round(amount, 10))


#: How :meth:`Totals.add` reads each field of a grouped row (the rest are floats).
_INTEGER_FIELDS = {
    "requests",
    "errors",
    "escalated",
    "input_tokens",
    "output_tokens",
    "latency_n",
    "confidence_n",
    "quality_n",
}
_MONEY_FIELDS = {"cost_usd", "baseline_cost_usd"}


@dataclass
class Totals:
    """Running sums of a window's grouped rollup rows (the dashboard's grain: money as
    Decimal, no squares); the derived figures are properties."""

    requests: int = 0
    errors: int = 0
    escalated: int = 0
    cost_usd: Decimal = Decimal("0")
    baseline_cost_usd: Decimal = Decimal("0")
    input_tokens: int = 0
    output_tokens: int = 0
    latency_n: int = 0
    latency_ms_sum: float = 0.0
    confidence_n: int = 0
    confidence_sum: float = 0.0
    quality_n: int = 0
    quality_sum: float = 0.0
    quality_sumsq: float = 0.0

    def add(self, row: dict) -> Totals:
        """Add a grouped row (the field names; a missing or NULL sum counts 0)."""
        for item in fields(self):
            value = row.get(item.name) or 0
            if item.name in _MONEY_FIELDS:
                value = Decimal(value)
            elif item.name in _INTEGER_FIELDS:
                value = int(value)
            else:
                value = float(value)
            setattr(self, item.name, getattr(self, item.name) + value)
        return self

    def as_row(self) -> dict:
        """The sums under the names of a grouped row (``add`` takes them back)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @property
    def savings_usd(self) -> Decimal:
        return self.baseline_cost_usd - self.cost_usd

    @property
    def cost_savings_percentage(self) -> float:
        fraction = savings_fraction(self.cost_usd, self.baseline_cost_usd)
        return 0.0 if fraction is None else fraction * 100

    @property
    def cost_per_request_usd(self) -> float:
        return float(share(self.cost_usd, self.requests) or 0)

    @property
    def avg_confidence(self) -> float:
        return share(self.confidence_sum, self.confidence_n) or 0.0

    @property
    def escalation_rate(self) -> float:
        return share(self.escalated, self.requests) or 0.0

    @property
    def error_rate(self) -> float:
        return share(self.errors, self.requests) or 0.0

    @property
    def avg_latency_ms(self) -> float | None:
        return share(self.latency_ms_sum, self.latency_n)

    @property
    def avg_quality(self) -> float | None:
        return share(self.quality_sum, self.quality_n)

    def figures(self) -> dict:
        """The JSON-ready figures shared by the overview, the breakdowns and the series."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "cost_usd": usd(self.cost_usd),
            "baseline_cost_usd": usd(self.baseline_cost_usd),
            "savings_usd": usd(self.savings_usd),
            "cost_savings_percentage": self.cost_savings_percentage,
            "cost_per_request_usd": self.cost_per_request_usd,
            "avg_confidence": self.avg_confidence,
            "escalation_rate": self.escalation_rate,
            "error_rate": self.error_rate,
            "avg_latency_ms": self.avg_latency_ms,
            "avg_quality": self.avg_quality,
        }
