"""The guide's `from backend_core.routing.api import router`: the routing API's ninja Router.

Mount it in a django-ninja API with ``api.add_router("/api/v1/routing", router)``; this
project already serves it at /api/v1/routing/ (see ``api.routing_api``).
"""

from api.routing_api import router, routing_api

__all__ = ["router", "routing_api"]
