"""The Django project: settings, URLs, the ASGI/WSGI entry points, logging and static files."""
