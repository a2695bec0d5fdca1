from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from . import receivers, reconciler  # noqa: F401  (registers its event handlers, its sweep)
