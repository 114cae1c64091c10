"""The guide's step 3: the example runs on a fresh data directory and prints each figure."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_example_usage_runs_end_to_end_on_simulated_providers(tmp_path):
    """Parallel comparison, executor, dashboard and analytics all print, marked simulated."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"ROUTING_DATA_DIR": str(tmp_path), "ROUTER_PROVIDER_MODE": "auto"})
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "routing_platform.routing.example_usage"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("Original: ", "Smart: ", "Cost: $", "Cost savings: ", "Avg confidence: "):
        assert expected in out
    assert "simulated" in out
    assert "Traceback" not in result.stderr
