from django.apps import AppConfig


class RoutingCliConfig(AppConfig):
    name = "routing_platform.cli"
    label = "routing_cli"
    verbose_name = "Routing command line"
