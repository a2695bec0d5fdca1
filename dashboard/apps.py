from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (registers this app's event handlers)
