"""URLs of the HTTP API: the routing API, the OpenAI- and Anthropic-compatible APIs and
/health."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from api.anthropic_api import anthropic_api
from api.health import health_report
from api.openai_api import openai_api
from api.routing_api import routing_api


async def health(request: HttpRequest) -> JsonResponse:
    """Database, Redis and workers; no API key needed (load balancers call it)."""
    code, body = await health_report()
    return JsonResponse(body, status=code)


urlpatterns = [
    path("health", health, name="health"),
    path("api/v1/routing/", routing_api.urls),
    path("v1/", openai_api.urls),
    # POST /v1/messages: the Anthropic Messages API (its own error shape, same routing).
    path("v1/", anthropic_api.urls),
]
