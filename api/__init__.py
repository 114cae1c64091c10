"""The HTTP API: the routing API under /api/v1/routing/ and the OpenAI-compatible /v1/."""
