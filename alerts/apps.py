from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (registers this app's event handlers)
