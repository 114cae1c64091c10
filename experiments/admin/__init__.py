"""Admin of the experiments app, one module per area (Django imports this package)."""

from experiments.admin import alerts, calls, experiments, quality  # noqa: F401
