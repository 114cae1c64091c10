"""The route of one call through an experiment (pure: no Django, importable anywhere)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArmRoute:
    """Where one unit's call goes: the arm's strategy and router parameters.

    ``in_experiment`` is False when the experiment is over and serves one arm to everyone
    (stopped, concluded, rolled back): such calls run that arm's strategy but are not
    counted in the experiment.
    """

    experiment_key: str
    arm_key: str
    strategy: str
    router_params: dict = field(default_factory=dict)
    experiment_id: int | None = None
    arm_id: int | None = None
    phase_id: int | None = None
    in_experiment: bool = True
