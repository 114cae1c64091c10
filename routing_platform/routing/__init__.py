"""The public, seed-compatible facade: `from routing_platform.routing import ModelRouter`.

    router = ModelRouter(escalation_threshold=0.6, cost_optimization_mode=True)
    router.escalation_threshold = 0.8      # plain attributes: change them at any time
    router.cost_optimization_mode = False
    decision = router.route_decision("Summarise this ...", task_type="summarization")
    result = await router.execute(text="...", task_type="analysis")

Unset arguments come from settings (ROUTER_ESCALATION_THRESHOLD, ROUTER_COST_OPTIMIZATION,
ROUTER_ENABLE_ESCALATION). Providers come from settings too (see `routing_platform.runtime`).
"""

from __future__ import annotations

from typing import Any

from routing_platform import runtime
from routing_platform.engine.council import SmartCouncil
from routing_platform.engine.executor import Executor
from routing_platform.engine.router import ModelRouter as _EngineRouter

__all__ = ["ModelRouter"]


class ModelRouter(_EngineRouter):
    def __init__(
        self,
        escalation_threshold: float | None = None,
        cost_optimization_mode: bool | None = None,
        enable_escalation: bool | None = None,
        *,
        config: Any = None,
        pool: Any = None,
        learned_router: Any = None,
    ) -> None:
        config = config or runtime.router_config()
        super().__init__(
            config,
            pool=pool,
            escalation_threshold=escalation_threshold,
            cost_optimization_mode=cost_optimization_mode,
            enable_escalation=enable_escalation,
            learned_router=learned_router,
        )

    # The pool is looked up at call time, so one router works across event loops.
    @property
    def pool(self):
        if self._pool is not None:
            return self._pool

        return runtime.provider_pool(self.config)

    @pool.setter
    def pool(self, value) -> None:
        self._pool = value

    def route_decision(self, text: str, task_type: str = "analysis") -> dict[str, Any]:
        """Which tier a request would start on, and why (no call is made)."""
        decision = self.choose(text, task_type)
        return {
            "task_type": decision.classification.task_type,
            "complexity": decision.classification.complexity,
            "complexity_score": decision.classification.score,
            "tier": decision.tier,
            "reasons": list(decision.reasons),
            "strong_probability": decision.strong_probability,
            "router": decision.router,
            "router_reason": decision.router_reason,
        }

    async def execute(self, *, text: str | None = None, task_type: str = "analysis", **kwargs):
        """Run one prompt through this router's cascade (smart routing)."""
        return await Executor(self).execute(text=text, task_type=task_type, **kwargs)

    async def evaluate_script(self, script: str, niche: str = "general") -> dict[str, Any]:
        """Evaluate a script through this router (the smart council)."""
        return await SmartCouncil(self).evaluate_script(script, niche)
