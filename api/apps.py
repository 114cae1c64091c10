from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API keys and HTTP API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: Django's documented place to register system checks is
        # ready(), once the app registry is loaded.
        from api import checks  # noqa: F401 - registers the system checks
