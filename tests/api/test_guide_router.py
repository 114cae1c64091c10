"""The guide's `from backend_core.routing.api import router` works, and the router mounts."""

from __future__ import annotations

from ninja import NinjaAPI


def test_guide_import_mounts_in_another_ninja_api():
    """`routing_platform.routing.api.router` is the routing API's ninja Router: it mounts
    under any prefix of another django-ninja API, with every endpoint of the guide."""
    from routing_platform.routing.api import router

    api = NinjaAPI(urls_namespace="guide-mount-test")
    api.add_router("/api/v1/routing", router)
    paths = set(api.get_openapi_schema(path_prefix="/")["paths"])
    assert {
        "/api/v1/routing/execute",
        "/api/v1/routing/evaluate",
        "/api/v1/routing/jobs/{job_id}",
        "/api/v1/routing/experiments/{key}/results",
    } <= paths
