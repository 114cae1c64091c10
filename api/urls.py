"""URLs of the HTTP API (filled by the API issue)."""

urlpatterns: list = []
