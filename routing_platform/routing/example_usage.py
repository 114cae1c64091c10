"""Step 3 of the migration guide: run the example to verify everything works.

    python -m routing_platform.routing.example_usage

Evaluates one script with the original council and with smart routing, runs one single
execution through the smart executor, then prints the dashboard overview, the alerts and
the analytics summary, exactly as the guide's snippets do. With no API key set the
providers are simulated (every result says ``provider="simulated"``).
"""

from __future__ import annotations

import asyncio
import os

import django
from asgiref.sync import sync_to_async
from django.core.management import call_command

SCRIPT = (
    "INT. KITCHEN - NIGHT. Maya finds her late father's recipe book and a letter tucked "
    "inside: the restaurant he lost was never sold. She has 30 days to win it back."
)
NICHE = "drama"


async def _run() -> None:
    # Imported here: the facade imports the experiments models, which need django.setup()
    # (main() runs it first; this is a script, not a module others import).
    from routing_platform.routing.analytics import analytics
    from routing_platform.routing.dashboard import router_dashboard
    from routing_platform.routing.integration import council as original_council
    from routing_platform.routing.integration import smart_council, smart_executor

    # Strategy 2 of the guide: run both systems in parallel and compare.
    original_result = await original_council.evaluate_script(SCRIPT, NICHE)
    smart_result = await smart_council.evaluate_script(SCRIPT, NICHE)
    metadata = smart_result["_routing_metadata"]
    print(f"Original: {original_result['final_score']} ({original_result['verdict']})")
    print(f"Smart: {smart_result['final_score']} ({smart_result['verdict']})")
    print(
        f"Cost: ${metadata['cost']:.6f} (baseline ${metadata['baseline_cost']:.6f}, "
        f"saved {metadata['savings']['percentage']:.1f}%)"
    )
    print(
        f"Model: {metadata['model']} via {metadata['provider']}, "
        f"confidence {metadata['confidence']:.3f}, escalated {metadata['escalated']}"
    )

    # Step 4, option B: a single model execution.
    result = await smart_executor.execute(
        text="Classify the tone of: 'I can't believe it worked!'", task_type="classification"
    )
    print(f"Executor: {result['model']} ({result['provider']}): {result['response'][:80]!r}")

    # Step 5: monitor performance; alerts; analytics.
    dashboard = await _sync(router_dashboard.get_dashboard)
    print(f"Cost savings: {dashboard['overview']['cost_savings_percentage']:.1f}%")
    print(f"Avg confidence: {dashboard['overview']['avg_confidence']:.3f}")
    for alert in dashboard["alerts"]:
        print(f"[{alert['level']}] {alert['message']}")
        print(f"Action: {alert['action']}")
    summary = await _sync(analytics.get_summary)
    print(f"By complexity: {sorted(summary['by_complexity'])}")


async def _sync(function):
    return await sync_to_async(function)()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    django.setup()
    call_command("migrate", verbosity=0)  # idempotent: the example works on a fresh checkout
    asyncio.run(_run())


if __name__ == "__main__":
    main()
