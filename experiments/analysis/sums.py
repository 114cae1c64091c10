"""Per-arm sufficient statistics: call-level sums of rollup rows, unit-level ratio sums.

:class:`CallSums` adds up the per-arm hourly rollup rows (one per status) into the
call-level statistics; :func:`unit_statistics` turns one row of the per-arm ``GROUP BY``
over the unit rollup into a :class:`~experiments.stats.ratio.RatioSums` per metric. Both
are pure: rows (dicts) in, sums out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from experiments import stats
from experiments.analysis.figures import savings_fraction, share
from experiments.analysis.metrics import METRICS, UNIT_MEANS, UNIT_RATIOS
from experiments.stats.ratio import RatioSums

ERROR_STATUS = "error"
#: The suffixes of the per-metric aggregates of the unit selector, in RatioSums order.
SUM_SUFFIXES = ("sx", "sy", "sxx", "syy", "sxy")


@dataclass
class CallSums:
    """The summed rollup columns of one arm (or one arm-day), at the call level."""

    n: int = 0
    errors: int = 0
    success_n: int = 0
    escalated: int = 0
    cost_usd_sum: float = 0.0
    cost_usd_sumsq: float = 0.0
    baseline_cost_usd_sum: float = 0.0
    quality_n: int = 0
    quality_sum: float = 0.0
    quality_sumsq: float = 0.0
    confidence_n: int = 0
    confidence_sum: float = 0.0
    confidence_sumsq: float = 0.0
    latency_n: int = 0
    latency_ms_sum: float = 0.0
    latency_ms_sumsq: float = 0.0

    def add_row(self, row: dict) -> None:
        """Add one rollup row (ArmRollup column names, with its ``status``); latency is
        that of successful calls."""
        count = int(row["n"] or 0)
        self.n += count
        self.escalated += int(row["escalated_n"] or 0)
        if row["status"] == ERROR_STATUS:
            self.errors += count
        else:
            self.success_n += count
            self.latency_n += int(row["latency_n"] or 0)
            self.latency_ms_sum += float(row["latency_ms_sum"] or 0.0)
            self.latency_ms_sumsq += float(row["latency_ms_sumsq"] or 0.0)
        self.cost_usd_sum += float(row["cost_usd_sum"] or 0)
        self.cost_usd_sumsq += float(row["cost_usd_sumsq"] or 0.0)
        self.baseline_cost_usd_sum += float(row["baseline_cost_usd_sum"] or 0)
        self.quality_n += int(row["quality_n"] or 0)
        self.quality_sum += float(row["quality_sum"] or 0.0)
        self.quality_sumsq += float(row["quality_sumsq"] or 0.0)
        self.confidence_n += int(row["confidence_n"] or 0)
        self.confidence_sum += float(row["confidence_sum"] or 0.0)
        self.confidence_sumsq += float(row["confidence_sumsq"] or 0.0)

    def add(self, other: CallSums) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    @property
    def escalation_rate(self) -> float | None:
        return share(self.escalated, self.n)

    @property
    def error_rate(self) -> float | None:
        return share(self.errors, self.n)

    @property
    def savings_vs_baseline(self) -> float | None:
        return savings_fraction(self.cost_usd_sum, self.baseline_cost_usd_sum)

    def sufficient_statistics(self) -> dict[str, dict]:
        """Per metric: ``{n, sum, sum_squares}`` (means) or ``{n, successes}`` (rates)."""
        return {
            "cost_per_request": {
                "n": self.n,
                "sum": self.cost_usd_sum,
                "sum_squares": self.cost_usd_sumsq,
            },
            "quality": {
                "n": self.quality_n,
                "sum": self.quality_sum,
                "sum_squares": self.quality_sumsq,
            },
            "confidence": {
                "n": self.confidence_n,
                "sum": self.confidence_sum,
                "sum_squares": self.confidence_sumsq,
            },
            "latency_ms": {
                "n": self.latency_n,
                "sum": self.latency_ms_sum,
                "sum_squares": self.latency_ms_sumsq,
            },
            "escalation_rate": {"n": self.n, "successes": self.escalated},
            "error_rate": {"n": self.n, "successes": self.errors},
        }


def mean_stats(raw: dict) -> stats.MeanStats:
    return stats.MeanStats(n=raw["n"], sum=raw["sum"], sum_squares=raw["sum_squares"])


def rate_stats(raw: dict) -> stats.ProportionStats:
    return stats.ProportionStats(n=raw["n"], successes=raw["successes"])


def ratio_sums(raw: dict) -> RatioSums:
    """A RatioSums from its ``as_dict()`` (an export's, a report's test inputs)."""
    return RatioSums(**{name: raw[name] for name in RatioSums.__dataclass_fields__})


def unit_statistics(row: dict) -> dict[str, RatioSums]:
    """Per metric the RatioSums of one arm from a row of the unit selector: ``units`` and,
    per metric, ``<metric>__sx``, ``__sy``, ``__sxx``, ``__syy``, ``__sxy``. Adds the
    unit-level mean ``cost_per_unit`` (``x_u = 1``, ``y_u`` = the unit's cost). A metric
    the row does not carry is left out."""
    units = int(row.get("units") or 0)
    out = {}
    for metric in UNIT_RATIOS:
        if f"{metric}__sx" not in row:
            continue
        values = [float(row.get(f"{metric}__{suffix}") or 0.0) for suffix in SUM_SUFFIXES]
        out[metric] = RatioSums(units, *values)
    if "cost_per_request" not in out:
        return out
    cost = out["cost_per_request"]
    out["cost_per_unit"] = RatioSums(
        units, float(units), cost.sum_y, float(units), cost.sum_yy, cost.sum_y
    )
    return out


def empty_unit_sums() -> dict[str, RatioSums]:
    """Per metric an empty RatioSums (an arm without units yet)."""
    return {metric: RatioSums() for metric in (*METRICS, *UNIT_MEANS)}


def unit_summary(sums: dict[str, RatioSums]) -> dict:
    """The plain figures of one arm's unit statistics (ratios and per-unit means)."""
    cost = sums["cost_per_request"]
    return {
        "units": cost.n,
        "calls": int(cost.sum_x),
        "calls_per_unit": share(cost.sum_x, cost.n),
        "cost_per_unit": share(cost.sum_y, cost.n),
        **{
            f"{metric}_ratio": share(sums[metric].sum_y, sums[metric].sum_x)
            for metric in UNIT_RATIOS
        },
    }
