"""ASGI entry point (uvicorn): async views and async httpx calls share one event loop.

API paths (/v1/, /api/, /health) take a lean middleware chain (see ``api.asgi``); the
admin and the dashboard take the full one.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_platform.settings")

django_application = get_asgi_application()

from api.asgi import with_lean_api_handler  # noqa: E402 - needs the configured Django above

application = with_lean_api_handler(django_application)
