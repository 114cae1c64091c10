"""The public, seed-compatible facade: `from routing_platform.routing import ModelRouter`."""
