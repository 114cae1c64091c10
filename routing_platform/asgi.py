"""ASGI entry point (uvicorn): async views and async httpx calls share one event loop."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routing_platform.settings")

application = get_asgi_application()
