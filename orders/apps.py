from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (registers this app's event handlers)
