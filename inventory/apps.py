from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (registers this app's event handlers)
