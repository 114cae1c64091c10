"""Small factories for the experiments tests: an experiment with its arms, a staff user,
and canned engine results in the runtime's documented shape (contract 1)."""

from __future__ import annotations

from itertools import count

from experiments import services
from experiments.models import Experiment

_sequence = count()


def make_experiment(
    *,
    key: str | None = None,
    status: str = "running",
    traffic_percentage: float = 100.0,
    unit_type: str = "user",
    weights: tuple[int, int] = (50, 50),
    shadow_percentage: float = 0.0,
    user=None,
) -> Experiment:
    """A two-arm experiment: original_council (control) vs smart_routing (threshold 0.6)."""
    key = key or f"exp-{next(_sequence)}"
    experiment = services.experiment_create(
        key=key,
        name=f"Experiment {key}",
        arms=[
            {
                "key": "original_council",
                "strategy": "original_council",
                "weight": weights[0],
                "is_control": True,
            },
            {
                "key": "smart_routing",
                "strategy": "smart_routing",
                "weight": weights[1],
                "escalation_threshold": 0.6,
            },
        ],
        user=user,
        traffic_percentage=traffic_percentage,
        unit_type=unit_type,
        shadow_percentage=shadow_percentage,
    )
    if status in ("running", "paused", "stopped", "concluded"):
        services.experiment_start(experiment=experiment, user=user)
    if status == "paused":
        services.experiment_pause(experiment=experiment, user=user)
    if status == "stopped":
        services.experiment_stop(experiment=experiment, user=user)
    if status == "concluded":
        services.experiment_conclude(experiment=experiment, user=user)
    return experiment


def engine_result(
    *,
    strategy: str = "smart_routing",
    kind: str = "execute",
    cost: float = 0.0004,
    baseline_cost: float = 0.0120,
    confidence: float = 0.82,
    final_score: float | None = 78.0,
    model: str = "gpt-4o-mini",
) -> dict:
    """What run_execute / run_evaluate return, per the runtime contract."""
    metadata = {
        "strategy": strategy,
        "task_type": "analysis",
        "complexity": "simple",
        "complexity_score": 0.21,
        "tier": "mini",
        "model": model,
        "provider": "simulated",
        "models_tried": [model],
        "escalated": False,
        "escalation_reason": "",
        "confidence": confidence,
        "input_tokens": 120,
        "output_tokens": 80,
        "cost": cost,
        "baseline_cost": baseline_cost,
        "savings": {"usd": baseline_cost - cost, "percentage": 96.7},
        "latency_ms": 140.0,
        "simulated": True,
    }
    if kind == "evaluate":
        return {
            "verdict": "approve",
            "final_score": final_score,
            "feedback": "Clear hook, good pacing.",
            "_routing_metadata": metadata,
        }
    return {
        "response": "ok",
        "model": model,
        "provider": "simulated",
        "_routing_metadata": metadata,
    }
