"""Headline savings over routed traffic: every served call except the control arms'.

A control arm runs the original council, i.e. the baseline itself; blending it into the
headline halves the figure that the arm rows and the experiment reports show. The
dashboard card and ``routing dashboard`` both read this.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.models import Arm


@dataclass(frozen=True)
class RoutedSavings:
    cost_usd: float
    baseline_cost_usd: float

    @property
    def saved_usd(self) -> float:
        return self.baseline_cost_usd - self.cost_usd

    @property
    def fraction(self) -> float | None:
        """Share of the baseline saved; None without any baseline cost."""
        if self.baseline_cost_usd <= 0:
            return None
        return self.saved_usd / self.baseline_cost_usd


def control_arm_labels() -> set[str]:
    """``{"experiment/arm"}`` of every control arm (the labels of the ``by_arm`` breakdown)."""
    return {
        f"{experiment_key}/{arm_key}"
        for experiment_key, arm_key in Arm.objects.filter(is_control=True).values_list(
            "experiment__key", "key"
        )
    }


def routed_savings(by_arm: dict[str, dict], control_labels: set[str]) -> RoutedSavings:
    """Cost and baseline summed over ``by_arm`` rows that are not control arms."""
    routed = [entry for label, entry in by_arm.items() if label not in control_labels]
    return RoutedSavings(
        cost_usd=sum(entry["cost_usd"] for entry in routed),
        baseline_cost_usd=sum(entry["baseline_cost_usd"] for entry in routed),
    )
